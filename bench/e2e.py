"""Run `parity bench e2e` (see parity/bench/e2e.py and docs/performance.md): python bench/e2e.py --help"""
import argparse
import sys

from parity.bench import e2e

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=e2e.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    e2e.add_arguments(parser)
    sys.exit(e2e.main(parser.parse_args()))
