"""Run `parity bench model` (see parity/bench/model.py and docs/performance.md): python bench/model.py --help"""
import argparse
import sys

from parity.bench import model

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=model.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model.add_arguments(parser)
    sys.exit(model.main(parser.parse_args()))
