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
from experiments.spec import ExperimentSpec

SPEC_DIR = Path(__file__).parent / "specs"


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
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SpecError(f"{path}: invalid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read spec: {exc.strerror}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping of fields at the top level")
    return parse_spec(raw, source=str(path))


def parse_spec(raw: dict[str, Any], source: str = "<spec>") -> ExperimentSpec:
    """Validate a spec given as a dict (as read from YAML)."""
    try:
        return ExperimentSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(f"{source}: {describe_error(exc)}") from None


def describe_error(exc: ValidationError) -> str:
    """The first validation problem, naming its field; unknown keys get a suggestion."""
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"] if not _is_union_tag(part)]
    field = ".".join(loc) or "spec"
    if error["type"] == "extra_forbidden":
        parent_fields = _fields_at(ExperimentSpec, loc[:-1])
        hint = difflib.get_close_matches(loc[-1], parent_fields, n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        return f"{field}: unknown key{suggestion}; valid keys: {', '.join(parent_fields)}"
    if error["type"] == "missing":
        return f"{field}: required field is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    if message.startswith(("space.", "diagnosis.")):  # already names its field
        return message
    given = error.get("input")
    if error["type"] != "value_error" and isinstance(given, (str, int, float, bool)):
        message += f", got {given!r}"  # pydantic's own messages do not say what was given
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
