"""Run every benchmark: ``python -m bench``."""

from bench import ccnet, commoncrawl, html_text, minhash_quality, minhash_speed, scale, slices, summary, tokens, wikipedia

if __name__ == "__main__":
    wikipedia.main()
    commoncrawl.main()
    ccnet.main()
    slices.main()
    minhash_quality.main()
    minhash_speed.main()
    tokens.main()
    html_text.main()
    scale.main()
    summary.main()
