"""The table of speed and memory targets, from the figures the benchmarks last wrote."""

from __future__ import annotations

import json

from bench.results_io import RESULTS


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def rows() -> list[tuple[str, str, str, bool | None]]:
    """(measure, figure, target, met) for every target a benchmark has measured."""
    found: list[tuple[str, str, str, bool | None]] = []
    cc, ccnet, tokens, c4, wiki, scale = (_load(n) for n in ("commoncrawl", "ccnet", "tokens", "c4", "wikipedia", "scale"))
    if ccnet:
        found.append(("CommonCrawl vs cc_net, same input and models, one core each",
                      f"{ccnet['ours_docs_per_s']:,.0f} vs {ccnet['ccnet_docs_per_s']:,.0f} docs/s: {ccnet['ratio']:.2f}x",
                      ">= 1.5x", ccnet["ratio"] >= 1.5))
    else:
        found.append(("CommonCrawl vs cc_net, same input and models, one core each", "not measured (cc_net not installed)",
                      ">= 1.5x", None))
    if cc:
        target = cc.get("target_ratio", 0.85)
        baseline = "without Beam (in-process executor)" if "ratio_over" in cc else "in a loop"
        found.append((f"CommonCrawl pipeline vs the same work {baseline}", f"{cc['ratio']:.2f}", f">= {target}",
                      cc["ratio"] >= target))
        volume = cc.get("shuffles")
        if volume:
            for label, row in volume["per_shuffle"].items():
                elements = (f"{row['elements_per_file']:,} elements per WET file" if "elements_per_file" in row
                            else f"{row['elements_per_gb']:,} elements per GB of WET")
                found.append((f"CommonCrawl shuffle {label}", f"{elements}, {row['mb_per_gb']:,.2f} MB per GB of WET",
                              "measured", None))
            found.append(("CommonCrawl shuffles, five snapshots projected",
                          f"{volume['snapshots_shuffle_elements'] / 1e9:,.2f} B elements, "
                          f"{volume['snapshots_shuffle_tb']:,.1f} TB: about ${volume['snapshots_shuffle_usd']:,} "
                          f"at ${volume['shuffle_usd_per_gb']}/GB (before: {volume['before_snapshots_tb_estimated']:,.0f} TB, "
                          f"{volume['before_snapshots_elements_estimated'] / 1e9:,.0f} B elements)", "measured", None))
    if tokens:
        same = tokens["web_counts_identical"] and tokens["books_counts_identical"]
        for corpus in ("web", "books"):
            cold, steady = tokens[f"{corpus}_tokens_per_s_per_core"], tokens[f"{corpus}_steady_tokens_per_s_per_core"]
            found.append((f"GPT-NeoX token counts, {corpus}, one core ({'identical' if same else 'NOT identical'})",
                          f"{cold / 1e6:.2f} M/s first pass, {steady / 1e6:.2f} M/s steady, "
                          f"{tokens[f'{corpus}_speedup_vs_tokenizers']:.1f}x tokenizers", ">= 2.5 M/s, identical",
                          same and cold >= 2.5e6))
    if c4:
        found.append(("C4 pipeline vs kernel", f"{c4['ratio']:.2f}", ">= 0.7", c4["ratio"] >= 0.7))
    if wiki:
        found.append(("Wikipedia pipeline vs reader + cleaning in a loop", f"{wiki['ratio']:.2f}", ">= 0.7",
                      wiki["ratio"] >= 0.7))
    if scale:
        for name in ("wikipedia", "c4", "commoncrawl", "books"):
            if f"{name}_rss_growth_8x_vs_1x" not in scale:
                continue
            growth = scale[f"{name}_rss_growth_8x_vs_1x"]
            peaks = "/".join(str(run["peak_rss_mb"]) for run in scale[name])
            found.append((f"{name} local run, peak RSS at 1x/4x/8x input", f"{peaks} MB: {growth:.2f}x",
                          "<= 1.5x", growth <= 1.5))
    return found


def main() -> None:
    print("\n| measure | figure | target | met |\n| --- | --- | --- | --- |")
    for measure, figure, target, met in rows():
        print(f"| {measure} | {figure} | {target} | {'n/a' if met is None else 'yes' if met else 'no'} |")


if __name__ == "__main__":
    main()
