"""Run every benchmark: ``python -m bench``."""

from bench import commoncrawl, slices, wikipedia

if __name__ == "__main__":
    wikipedia.main()
    commoncrawl.main()
    slices.main()
