"""Run `parity bench pipeline` (see parity/bench/pipeline.py and docs/performance.md): python bench/pipeline.py --help"""
import argparse
import sys

from parity.bench import pipeline

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=pipeline.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    pipeline.add_arguments(parser)
    sys.exit(pipeline.main(parser.parse_args()))
