"""Run `parity bench randaug` (see parity/bench/randaug_ops.py and docs/performance.md): python bench/randaug_ops.py --help"""
import argparse
import sys

from parity.bench import randaug_ops

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=randaug_ops.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    randaug_ops.add_arguments(parser)
    sys.exit(randaug_ops.main(parser.parse_args()))
