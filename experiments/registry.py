"""Finding and loading experiment specs: shipped ones by name, user ones by path.

Example:
    >>> from experiments.registry import load_spec
    >>> load_spec("xor").task
    'binary'
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from common.errors import SpecError
from common.text import shown
from experiments.spec import ExperimentSpec

SPEC_DIR = Path(__file__).parent / "specs"
MAX_SPEC_BYTES = 1_000_000  # the shipped specs are ~2 kB; inline data sets stay well below
MAX_SPEC_VALUES = 200_000  # values after YAML aliases expand: a 600-byte alias bomb is billions
MAX_SPEC_DEPTH = 32  # a spec is 4 levels deep; PyYAML recurses once per level


def shipped_specs() -> dict[str, Path]:
    """The experiments that ship with fitscope, by name."""
    return {path.stem: path for path in sorted(SPEC_DIR.glob("*.yaml"))}


def resolve_spec_path(name_or_path: str) -> Path:
    """A shipped experiment's name, or a path to a YAML file."""
    shipped = shipped_specs()
    if name_or_path in shipped:
        return shipped[name_or_path]
    looks_like_path = name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path
    if looks_like_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise SpecError(f"spec file not found: {path}")
        return path
    raise SpecError(
        f"unknown experiment {name_or_path!r}; available: {', '.join(shipped)} "
        "(or give a path to a .yaml spec)"
    )


def load_spec(name_or_path: str) -> ExperimentSpec:
    """Load and validate one spec; every problem becomes a one-line SpecError."""
    path = resolve_spec_path(name_or_path)
    try:
        with path.open("rb") as file:
            blob = file.read(MAX_SPEC_BYTES + 1)
        if len(blob) > MAX_SPEC_BYTES:
            raise SpecError(f"{path}: spec larger than {MAX_SPEC_BYTES} bytes; keep data in a "
                            "CSV file (data.path), not in the spec")
        text = blob.decode("utf-8")
        _check_depth(text, path)
        raw = yaml.load(text, Loader=_SpecLoader)  # noqa: S506 (a SafeLoader: see below)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = str(getattr(exc, "problem", None) or exc).splitlines()[0][:200]
        raise SpecError(f"{path}: invalid YAML{where}: {problem}") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not a UTF-8 text file (byte {exc.start}); a spec is YAML "
                        "text") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read spec: {exc.strerror}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping of fields at the top level")
    _check_values(raw, path)
    return parse_spec(raw, source=str(path))


class _SpecLoader(yaml.SafeLoader):
    """PyYAML's safe loader (no tags that build objects), refusing a key given twice: by
    default the last one wins silently, so a second `name:` renamed the experiment."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults` may be overridden
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                repeated = key in seen
            except TypeError:  # an unhashable key: the base class names that error
                continue
            if repeated:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"duplicate key {shown(key)}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _check_depth(text: str, path: Path) -> None:
    """Refuse nesting PyYAML would recurse into until Python's stack ends (a RecursionError)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_SPEC_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else "?"
                raise SpecError(f"{path}: nested deeper than {MAX_SPEC_DEPTH} levels "
                                f"(line {line})")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _check_values(raw: Any, path: Path) -> None:
    """Refuse a spec whose YAML aliases expand to more values than any real spec holds
    (validating or printing it would take gigabytes)."""
    pending, count = [raw], 0
    while pending:
        value = pending.pop()
        count += 1
        if count > MAX_SPEC_VALUES:
            raise SpecError(f"{path}: more than {MAX_SPEC_VALUES} values once YAML aliases "
                            "expand (an alias bomb?)")
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, (list, tuple)):
            pending.extend(value)


def parse_spec(raw: dict[str, Any], source: str = "<spec>") -> ExperimentSpec:
    """Validate a spec given as a dict (as read from YAML)."""
    try:
        return ExperimentSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(f"{source}: {describe_error(exc)}") from None


def describe_error(exc: ValidationError) -> str:
    """The first validation problem, naming its field; unknown keys get a suggestion."""
    error = exc.errors()[0]
    loc = [str(part)[:60] for part in error["loc"] if not _is_union_tag(part)]
    field = ".".join(loc) or "spec"
    if error["type"] == "extra_forbidden":
        parent_fields = _fields_at(ExperimentSpec, loc[:-1])
        hint = difflib.get_close_matches(loc[-1], parent_fields, n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        return f"{field}: unknown key{suggestion}; valid keys: {', '.join(parent_fields)}"
    if error["type"] == "missing":
        return f"{field}: required field is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    if message.startswith(("space.", "diagnosis.", "search.")):  # already names its field
        return message
    given = error.get("input")
    if error["type"] != "value_error" and isinstance(given, (str, int, float, bool)):
        message += f", got {shown(given)}"  # pydantic's own messages do not say what was given
    return f"{field}: {message}"


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and part in (
        "Fixed",
        "Choice",
        "Range",
        "function-before[as_param(), union[Fixed,Choice,Range]]",
    )


def _fields_at(model: type[BaseModel], path: list[str]) -> list[str]:
    for name in path:
        field = model.model_fields.get(name)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def list_experiments() -> list[tuple[str, str]]:
    """(name, description) of every shipped experiment."""
    return [(name, load_spec(name).description) for name in shipped_specs()]
