"""Run every benchmark: ``python -m bench``."""

from bench import commoncrawl, wikipedia

if __name__ == "__main__":
    wikipedia.main()
    commoncrawl.main()
