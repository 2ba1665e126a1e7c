"""biobench's built-in plugins, each registered through the ``biobench`` entry points."""
