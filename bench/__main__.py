"""Run every benchmark: ``python -m bench``."""

from bench import commoncrawl, minhash_quality, minhash_speed, slices, tokens, wikipedia

if __name__ == "__main__":
    wikipedia.main()
    commoncrawl.main()
    slices.main()
    minhash_quality.main()
    minhash_speed.main()
    tokens.main()
