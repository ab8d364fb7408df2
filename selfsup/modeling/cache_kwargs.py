"""The KV cache's keyword across transformers 5.x: ``cache`` (5.24+) or ``past_key_values``.

transformers 5.24 renamed ``past_key_values`` to ``cache``: ``generate()`` passes ``cache=`` to
``forward`` and reads ``outputs["cache"]``; the old keyword and attribute warn until 5.40.
Earlier 5.x releases pass ``past_key_values=`` and read ``outputs["past_key_values"]``. A
``forward`` that declares only one name drops the other into ``**kwargs`` and silently
decodes every step from an empty cache, so:

* our models declare ``cache`` and wrap ``forward`` in :func:`accepts_past_key_values`;
* they build outputs with ``**{OUTPUT_FIELD: cache}``, the field this release's outputs have;
* code that runs any model's ``forward`` (the ICL harness) passes the cache by
  :func:`cache_keyword` and reads it back with :func:`output_cache`.
"""
from __future__ import annotations

import functools
import inspect

from transformers.modeling_outputs import CausalLMOutputWithPast

OUTPUT_FIELD = "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"


def accepts_past_key_values(forward):
    """Decorate a ``forward(self, ..., cache=None, ...)`` so that ``past_key_values=`` means
    ``cache=``; both at once is an error. The signature seen by ``inspect`` is ``forward``'s."""

    @functools.wraps(forward)
    def wrapper(self, *args, **kwargs):
        if "past_key_values" in kwargs:
            old = kwargs.pop("past_key_values")
            if kwargs.get("cache") is not None and old is not None:
                raise ValueError("pass the KV cache as cache= or past_key_values=, not both")
            if old is not None:
                kwargs["cache"] = old
        return forward(self, *args, **kwargs)

    return wrapper


def cache_keyword(model) -> str:
    """The keyword ``model.forward`` takes the KV cache by: ``cache`` when it declares it (ours,
    and transformers' own models from 5.24), else ``past_key_values``."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # through a peft wrapper
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def output_cache(output):
    """The KV cache a forward returned, under either name (no deprecation warning)."""
    cache = output.get("cache") if hasattr(output, "get") else getattr(output, "cache", None)
    return cache if cache is not None else getattr(output, "past_key_values", None)
