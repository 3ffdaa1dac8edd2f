"""The one YAML reader of the package: safe, numbers as YAML 1.2 reads them, duplicate keys refused.

PyYAML implements YAML 1.1, whose float pattern needs a dot in the mantissa and a sign in the exponent: ``1e-5``
is the *string* ``'1e-5'`` there. :class:`Loader` adds YAML 1.2's float pattern, so ``1e-5``, ``1E5`` and
``2.5e-3`` are floats as every reader of the registry expects (a quoted ``'1e-5'`` stays a string, and the
typed parameters then refuse it naming the parameter). It also refuses a key given twice in one mapping
instead of silently keeping the last (a key merged in by ``<<: *anchor`` may still be overridden).

Used by the registry, ``--params`` files of ``train``, ``--set KEY=VALUE`` overrides and SLURM option files.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["Loader", "YAMLError", "load"]

YAMLError = yaml.YAMLError

# YAML 1.2 core schema floats that YAML 1.1 leaves strings (no dot, or an unsigned exponent)
_FLOAT_12 = re.compile(r"""^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$""")


class Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with YAML 1.2 floats that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # only the keys written in this mapping count: a key merged in by `<<: *anchor` may be overridden
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicate key {key!r} (first at line {seen[key].line + 1}); YAML would silently keep "
                    "the last one: remove or rename one of them", key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))


def load(text: str) -> Any:
    """Parse one YAML document with :class:`Loader` (raises ``yaml.YAMLError``)."""
    return yaml.load(text, Loader=Loader)
