"""Run every benchmark: ``python -m bench``."""

from bench import wikipedia

if __name__ == "__main__":
    wikipedia.main()
