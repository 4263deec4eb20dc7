"""The `trace` command line: the only package that imports both the record and read sides."""
