"""The demo (the README's first command) has a sample for every slice."""

from redpajama.pipelines import demo
from redpajama.slices.registry import registry


def test_every_slice_has_a_local_and_a_public_sample_or_is_built_from_packages():
    for name in registry():
        if name == "github":  # installed packages as repositories
            continue
        assert demo.LOCAL.get(name), name
        assert name in demo.REMOTE, name
