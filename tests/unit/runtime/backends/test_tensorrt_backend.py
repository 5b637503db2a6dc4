"""TensorRtBackend on CPU: the real backend class, a fake engine of either flavour, host
memory as the GPU. The cases live in tests/fixtures/tensorrt_backend_cases.py; tests/gpu
runs them on a GPU."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.fixtures.fake_tensorrt import FakeCudart
from tests.fixtures.tensorrt_backend_cases import (  # noqa: F401  (collected here)
    MakeBackend, backend_factory, make_backend, test_an_engine_that_is_not_the_manifests_graph_is_refused,
    test_clip_image_graph_splits_images,
    test_each_thread_gets_its_own_context_and_its_own_rows,
    test_engine_dtypes_decide_the_feeds_and_the_output,
    test_gme_language_graph_is_multi_input_and_never_split,
    test_refusals_raise_and_give_the_context_back,
    test_rows_come_back_in_order_across_profiles_and_splits,
    test_rows_split_along_each_inputs_own_batch_axis,
    test_rtx_runtime_cache_survives_a_restart, test_tensorrt_11_has_no_runtime_cache,
    test_unreadable_plan_and_missing_plan_are_artifact_errors)


@pytest.fixture
def cudart(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCudart]:
    import runtime.backends.cuda_buffers
    import runtime.backends.gpu

    fake = FakeCudart()
    monkeypatch.setattr(runtime.backends.gpu, "import_cudart", lambda: fake)
    monkeypatch.setattr(runtime.backends.cuda_buffers, "import_cudart", lambda: fake)
    yield fake


def test_close_frees_every_buffer_and_stream(make_backend: MakeBackend,
                                             cudart: FakeCudart) -> None:
    backend = make_backend(contexts=3)
    # per context: ids, mask and output, each a device and a pinned buffer
    assert len(cudart.live) == 3 * 3 * 2 and len(cudart.streams) == 3
    backend.close()
    assert not cudart.live and not cudart.streams


def test_a_failed_allocation_frees_what_was_allocated(cudart: FakeCudart) -> None:
    from runtime.backends.cuda_buffers import StreamBuffers
    from runtime.errors import ApplianceError

    with pytest.raises(ApplianceError, match="cudaErrorMemoryAllocation"):
        StreamBuffers({"input_ids": 64, "embeddings": 1 << 40})
    assert not cudart.live and not cudart.streams


def test_a_failed_load_frees_the_contexts_made_so_far(make_backend: MakeBackend,
                                                     cudart: FakeCudart,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.errors import ApplianceError

    calls = iter(range(100))
    alloc = cudart.cudaMalloc
    # the third context's first device buffer fails (each context: 3 device buffers)
    monkeypatch.setattr(cudart, "cudaMalloc", lambda size: alloc(1 << 40 if next(calls) == 6
                                                                 else size))
    with pytest.raises(ApplianceError, match="cudaErrorMemoryAllocation"):
        make_backend(contexts=3)
    assert not cudart.live and not cudart.streams
