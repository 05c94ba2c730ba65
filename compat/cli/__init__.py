"""The command line: one module per command, argparse, lazy imports, one-line errors."""
