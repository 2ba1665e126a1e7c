"""Print the README metric table: ``python -m biobench.metrics``."""

from biobench.metrics.catalog import metric_table

if __name__ == "__main__":
    print(metric_table())
