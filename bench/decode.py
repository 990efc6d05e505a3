"""Run `parity bench decode` (see parity/bench/decode.py and docs/performance.md): python bench/decode.py --help"""
import argparse
import sys

from parity.bench import decode

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=decode.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    decode.add_arguments(parser)
    sys.exit(decode.main(parser.parse_args()))
