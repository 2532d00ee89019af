"""The demo (the README's first command) has a sample for every slice, named in the slice's manifest."""

from redpajama.pipelines.commands import demo
from redpajama.slices.registry import registry


def test_every_slice_has_a_local_and_a_public_sample_or_is_built_from_packages():
    for name, cls in registry().items():
        sample = cls.demo_sample()
        assert sample is not None, name
        assert sample.packages or sample.local, name


def test_the_plan_reads_the_samples_and_runs_a_slice_after_the_one_its_models_learn_from(tmp_path):
    shared = tmp_path / "shared"
    runs, skipped = demo.plan(str(shared), str(tmp_path / "out"), "tokenizer.json")
    planned = {run.name: run for run in runs}
    order = [run.name for run in runs]
    for run in runs:
        if run.models_from:
            assert order.index(run.models_from) < order.index(run.name)
    # without the sample data: the public samples, and the slices that have none are skipped
    assert set(planned) | set(skipped) == set(registry())
    for name in skipped:
        assert not registry()[name].demo_sample().remote
    for run in runs:
        sample = registry()[run.name].demo_sample()
        assert run.inputs == (list(sample.remote) if not sample.packages else run.inputs)
        assert None not in [run.options.get(key) for key, value in sample.options.items() if value == demo.TOKENIZER]
        assert all(value is None for key, value in run.options.items() if str(sample.options[key]).startswith(demo.SHARED))
    (shared / "models" / "fasttext-lid").mkdir(parents=True)
    (shared / "models" / "fasttext-lid" / "lid.176.ftz").write_bytes(b"")
    runs, _ = demo.plan(str(shared), str(tmp_path / "out"), "tokenizer.json")
    given = {run.options.get("lid_model") for run in runs if "lid_model" in run.options}
    assert given == {str(shared / "models" / "fasttext-lid" / "lid.176.ftz")}
