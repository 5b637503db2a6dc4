"""TensorRtBackend on a real GPU without TensorRT: the real backend class, real cuda-python
buffers and streams, a fake engine whose work is device-to-device copies on each context's
stream (tests/fixtures/fake_tensorrt.py). Same cases as tests/unit/runtime/backends/test_tensorrt_backend.py.

Needs cuda-python and a CUDA device; skipped cleanly elsewhere.
"""

from __future__ import annotations

from typing import Any

import pytest

from runtime.backends.gpu import gpu_count
from tests.fixtures.tensorrt_backend_cases import (  # noqa: F401  (collected here)
    backend_factory, make_backend, test_an_engine_that_is_not_the_manifests_graph_is_refused,
    test_clip_image_graph_splits_images,
    test_each_thread_gets_its_own_context_and_its_own_rows,
    test_engine_dtypes_decide_the_feeds_and_the_output,
    test_gme_language_graph_is_multi_input_and_never_split,
    test_refusals_raise_and_give_the_context_back,
    test_rows_come_back_in_order_across_profiles_and_splits,
    test_rows_split_along_each_inputs_own_batch_axis,
    test_rtx_runtime_cache_survives_a_restart, test_tensorrt_11_has_no_runtime_cache,
    test_unreadable_plan_and_missing_plan_are_artifact_errors)

COUNT, WHY = gpu_count()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(COUNT == 0, reason=f"needs a CUDA GPU: {WHY}")]


@pytest.fixture
def cudart() -> Any:
    from runtime.backends.gpu import import_cudart

    return import_cudart()
