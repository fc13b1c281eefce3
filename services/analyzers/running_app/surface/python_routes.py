"""Routes in an app's Python source, read with `ast` (nothing is imported or run): Flask (`route`, the verb
decorators, blueprints and `add_url_rule`), FastAPI and Starlette (decorators and routers with their prefixes),
aiohttp (route tables, `router.add_*`, `web.get(...)`), and the fields each handler reads.

Fields: Flask's `request.args/form/values/json/get_json()/cookies/headers/files`, and any name bound to one of
them (`data = request.get_json()`, then `data["title"]`); FastAPI's parameters (path, query, `Form`, `Cookie`,
`Header`, `Body`, and the fields of a pydantic model); Starlette's and aiohttp's `request.query_params`, `query`,
`match_info`, `await request.json()`, `await request.form()` / `post()`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from services.analyzers.running_app.surface.model import Endpoint, Field, FieldType, Handler, Location

VERBS = ("get", "post", "put", "patch", "delete", "head", "options")
ERROR_HANDLERS = ("errorhandler", "app_errorhandler", "exception_handler")
ROUTER_FACTORIES = {
    "Flask": "url_prefix",
    "Blueprint": "url_prefix",
    "FastAPI": "root_path",
    "APIRouter": "prefix",
    "Starlette": "",
    "RouteTableDef": "",
    "Application": "",
    "Quart": "url_prefix",
}
FLASK_CONVERTER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
FASTAPI_PARAMETER = re.compile(r"\{(\w+)(?::\w+)?\}")
NOT_INPUTS = {
    "Request",
    "Response",
    "BackgroundTasks",
    "WebSocket",
    "Session",
    "AsyncSession",
    "HTTPConnection",
}
SIMPLE_TYPES: dict[str, FieldType] = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
# request attributes (and call results) that hold inputs of one location
SOURCES: dict[str, Location] = {
    "args": "query",
    "query": "query",
    "query_params": "query",
    "form": "form",
    "values": "query",
    "json": "json",
    "get_json": "json",
    "cookies": "cookie",
    "headers": "header",
    "files": "form",
    "match_info": "path",
    "path_params": "path",
    "post": "form",
    "data": "json",
}


@dataclass
class Router:
    """A Flask app or blueprint, a FastAPI app or router, an aiohttp route table: its own prefix and where it is
    mounted."""

    module: str
    name: str
    prefix: str = ""
    parents: list[tuple[tuple[str, str], str]] = field(default_factory=list)  # (router key, mount prefix)


@dataclass
class RawRoute:
    module: str
    router: str | None  # the router's variable, None for aiohttp's free `web.get(...)`
    path: str
    methods: list[str]
    function: ast.FunctionDef | ast.AsyncFunctionDef | None
    file: str


@dataclass
class Module:
    name: str
    file: str
    tree: ast.Module
    imports: dict[str, tuple[str, str]] = field(default_factory=dict)  # local name → (module, name)
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)


def _string(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):  # f"{PREFIX}/x": keep the literal parts
        return "".join(
            part.value
            for part in node.values
            if isinstance(part, ast.Constant) and isinstance(part.value, str)
        )
    return None


def _keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((keyword.value for keyword in call.keywords if keyword.arg == name), None)


def _methods(node: ast.AST | None, default: list[str]) -> list[str]:
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        found = [value.upper() for element in node.elts if (value := _string(element))]
        return found or default
    return default


def _callee(call: ast.Call) -> str:
    function = call.func
    if isinstance(function, ast.Attribute):
        return function.attr
    return function.id if isinstance(function, ast.Name) else ""


def _owner(call: ast.Call) -> str | None:
    """`bp` of `bp.route(...)`; `app` of `app.router.add_get(...)`."""
    function = call.func
    if not isinstance(function, ast.Attribute):
        return None
    value = function.value
    if isinstance(value, ast.Attribute) and value.attr == "router":
        value = value.value
    return value.id if isinstance(value, ast.Name) else None


def flask_template(path: str) -> str:
    """`/notes/<int:note_id>` → `/notes/{note_id}`; FastAPI's `{p:path}` → `{p}`."""
    return FASTAPI_PARAMETER.sub(r"{\1}", FLASK_CONVERTER.sub(r"{\2}", path))


def _converter_types(path: str) -> dict[str, FieldType]:
    return {
        name: "integer" if kind == "int" else "number" if kind == "float" else "string"
        for kind, name in FLASK_CONVERTER.findall(path)
    }


def _module_name(relative: Path) -> str:
    parts = list(relative.with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _read_modules(root: Path, files: list[Path]) -> list[Module]:
    modules = []
    for path in files:
        try:
            tree = ast.parse(path.read_text(errors="replace"), filename=str(path))
        except (SyntaxError, ValueError):
            continue
        relative = path.relative_to(root)
        module = Module(name=_module_name(relative), file=relative.as_posix(), tree=tree)
        package = module.name.rsplit(".", 1)[0] if "." in module.name else ""
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = (
                        package.split(".")[: max(0, len(package.split(".")) - node.level + 1)]
                        if package
                        else []
                    )
                    base = ".".join([*parent, base] if base else parent)
                for alias in node.names:
                    module.imports[alias.asname or alias.name] = (base, alias.name)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                module.functions.setdefault(node.name, node)
        modules.append(module)
    return modules


def _routers(module: Module) -> dict[str, Router]:
    found: dict[str, Router] = {}
    for node in ast.walk(module.tree):
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        factory = _callee(node.value)
        if factory not in ROUTER_FACTORIES:
            continue
        option = ROUTER_FACTORIES[factory]
        prefix = (_string(_keyword(node.value, option)) if option else None) or ""
        for target in node.targets:
            if isinstance(target, ast.Name):
                found[target.id] = Router(module.name, target.id, prefix.rstrip("/"))
    return found


def _function_of(module: Module, node: ast.AST | None) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    if isinstance(node, ast.Name):
        return module.functions.get(node.id)
    if isinstance(node, ast.Attribute):  # views.index
        return module.functions.get(node.attr)
    return None


def _routes(module: Module) -> Iterator[RawRoute]:
    for node in ast.walk(module.tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for decorator in node.decorator_list:
                if not isinstance(decorator, ast.Call):
                    continue
                verb = _callee(decorator)
                path = _string(decorator.args[0]) if decorator.args else _string(_keyword(decorator, "path"))
                owner = _owner(decorator)
                if verb in ERROR_HANDLERS:  # the not-found page: any path the app does not route reaches it
                    yield RawRoute(module.name, owner, "/{path}", ["GET"], node, module.file)
                    continue
                if path is None:
                    continue
                if verb in ("route", "api_route"):
                    default = ["GET"]
                    methods = _methods(_keyword(decorator, "methods"), default)
                elif verb in VERBS:
                    methods = [verb.upper()]
                else:
                    continue
                yield RawRoute(module.name, owner, path, methods, node, module.file)
        elif isinstance(node, ast.Call):
            yield from _call_routes(module, node)


def _call_routes(module: Module, call: ast.Call) -> Iterator[RawRoute]:
    name = _callee(call)
    owner = _owner(call)
    args = call.args
    if name == "add_url_rule" and args:
        path = _string(args[0])
        view = _keyword(call, "view_func") or (args[2] if len(args) > 2 else None)
        if path is not None:
            methods = _methods(_keyword(call, "methods"), ["GET"])
            yield RawRoute(module.name, owner, path, methods, _function_of(module, view), module.file)
    elif name.startswith("add_") and name[4:] in VERBS and len(args) >= 2:  # aiohttp app.router.add_get
        path = _string(args[0])
        if path is not None:
            yield RawRoute(
                module.name, owner, path, [name[4:].upper()], _function_of(module, args[1]), module.file
            )
    elif name == "add_route" and len(args) >= 3:  # aiohttp app.router.add_route("POST", path, handler)
        verb, path = _string(args[0]), _string(args[1])
        if verb and path is not None:
            methods = list(VERBS) if verb == "*" else [verb.upper()]
            yield RawRoute(
                module.name,
                owner,
                path,
                [m.upper() for m in methods],
                _function_of(module, args[2]),
                module.file,
            )
    elif name in VERBS and isinstance(call.func, ast.Attribute) and len(args) >= 2:  # web.get(path, handler)
        base = call.func.value
        if isinstance(base, ast.Name) and base.id == "web":
            path = _string(args[0])
            if path is not None:
                yield RawRoute(
                    module.name, None, path, [name.upper()], _function_of(module, args[1]), module.file
                )


def _mounts(module: Module, routers: dict[tuple[str, str], Router]) -> None:
    """Record where routers are mounted: `register_blueprint(bp, url_prefix=…)`, `include_router(r, prefix=…)`."""
    for node in ast.walk(module.tree):
        if not isinstance(node, ast.Call) or _callee(node) not in (
            "register_blueprint",
            "include_router",
            "mount",
        ):
            continue
        parent = _owner(node)
        if parent is None or not node.args:
            continue
        child_node = node.args[-1] if _callee(node) == "mount" else node.args[0]
        option = {"register_blueprint": "url_prefix", "include_router": "prefix"}.get(_callee(node))
        prefix = _string(_keyword(node, option)) if option else _string(node.args[0])
        child = _resolve(module, child_node, routers)
        parent_key = _resolve(module, ast.Name(id=parent), routers)
        if child is None or parent_key is None or child == parent_key:
            continue
        routers[child].parents.append((parent_key, (prefix or "").rstrip("/")))


def _resolve(module: Module, node: ast.AST, routers: dict[tuple[str, str], Router]) -> tuple[str, str] | None:
    """The router a name in `module` refers to: its own, an imported one, else the only router of that name."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):  # notes.bp
        imported = module.imports.get(node.value.id)
        candidates = [key for key in routers if key[1] == node.attr]
        if imported:
            wanted = f"{imported[0]}.{imported[1]}".strip(".")
            exact = [key for key in candidates if key[0] in (wanted, imported[1])]
            candidates = exact or candidates
        return candidates[0] if len(candidates) == 1 else None
    if not isinstance(node, ast.Name):
        return None
    if (module.name, node.id) in routers:
        return (module.name, node.id)
    imported = module.imports.get(node.id)
    if imported and (imported[0], imported[1]) in routers:
        return imported
    name = imported[1] if imported else node.id
    candidates = [key for key in routers if key[1] == name]
    return candidates[0] if len(candidates) == 1 else None


def _prefix(key: tuple[str, str] | None, routers: dict[tuple[str, str], Router], depth: int = 0) -> str:
    if key is None or key not in routers or depth > 8:
        return ""
    router = routers[key]
    mounted = router.parents[0] if router.parents else None
    above = _prefix(mounted[0], routers, depth + 1) + mounted[1] if mounted else ""
    return above + router.prefix


def python_endpoints(root: Path, files: list[Path]) -> list[Endpoint]:
    """Every route the Python files under `root` declare, as endpoints with their handlers and fields (blocking)."""
    modules = _read_modules(root, files)
    routers: dict[tuple[str, str], Router] = {}
    for module in modules:
        routers.update({(module.name, name): router for name, router in _routers(module).items()})
    for module in modules:
        _mounts(module, routers)
    models = {
        node.name: node
        for module in modules
        for node in ast.walk(module.tree)
        if isinstance(node, ast.ClassDef)
    }
    endpoints = []
    for module in modules:
        for route in _routes(module):
            key = _resolve(module, ast.Name(id=route.router), routers) if route.router else None
            if route.router and key is None:
                continue  # a decorator of something that is not a router we know (a cache, a CLI)
            full = _prefix(key, routers) + route.path
            template = flask_template(full if full.startswith("/") else "/" + full)
            fields = _path_fields(full)
            handler = None
            if route.function is not None:
                fields = _merge_fields(fields, handler_fields(route.function, template, models))
                handler = Handler(
                    path=route.file,
                    line=route.function.lineno,
                    end_line=route.function.end_lineno or route.function.lineno,
                    function=route.function.name,
                )
            for method in route.methods:
                if method in ("HEAD", "OPTIONS"):
                    continue
                endpoints.append(
                    Endpoint(
                        method=method, path=template, fields=fields, found_by=["source"], handler=handler
                    )
                )
    return endpoints


def _path_fields(path: str) -> list[Field]:
    types = _converter_types(path)
    names = [name for _, name in FLASK_CONVERTER.findall(path)] + FASTAPI_PARAMETER.findall(path)
    return [
        Field(name=name, location="path", type=types.get(name, "string")) for name in dict.fromkeys(names)
    ]


def _merge_fields(first: list[Field], second: list[Field]) -> list[Field]:
    """`first`, then each field of `second` not already there (by name and location), each once."""
    merged: dict[tuple[str, str], Field] = {}
    for item in [*first, *second]:
        merged.setdefault((item.name, item.location), item)
    return list(merged.values())


def _source_of(node: ast.AST, aliases: dict[str, Location]) -> Location | None:
    """Where the inputs of an expression come from: `request.args`, `await request.json()`, a bound name."""
    if isinstance(node, ast.Await):
        node = node.value
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute) and node.func.attr in (
            "get_json",
            "json",
            "form",
            "post",
            "body",
        ):
            if _is_request(node.func.value):
                return "json" if node.func.attr in ("get_json", "json", "body") else "form"
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("to_dict", "copy", "dict"):
            return _source_of(node.func.value, aliases)
        return None
    if isinstance(node, ast.Attribute) and node.attr in SOURCES and _is_request(node.value):
        return SOURCES[node.attr]
    if isinstance(node, ast.BoolOp):  # request.get_json() or {}
        return next((found for value in node.values if (found := _source_of(value, aliases))), None)
    if isinstance(node, ast.Name):
        return aliases.get(node.id)
    return None


def _is_request(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id in ("request", "req")


def _key_read(node: ast.AST) -> tuple[ast.AST, str] | None:
    """(container, key) of `x.get("k")`, `x["k"]`, `x.getlist("k")`, `x.get_one("k")`."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
        if node.func.attr in ("get", "getlist", "getone", "get_all", "pop", "setdefault"):
            key = _string(node.args[0])
            if key is not None:
                return node.func.value, key
    if isinstance(node, ast.Subscript):
        key = _string(node.slice)
        if key is not None:
            return node.value, key
    return None


def handler_fields(
    function: ast.FunctionDef | ast.AsyncFunctionDef, template: str, models: dict[str, ast.ClassDef]
) -> list[Field]:
    """The inputs one handler reads."""
    aliases: dict[str, Location] = {}
    fields: list[Field] = []
    path_names = set(FASTAPI_PARAMETER.findall(template))
    fields += _parameter_fields(function, path_names, models)
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            location = _source_of(node.value, aliases)
            if location is not None:
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        aliases[target.id] = location
    for node in ast.walk(function):
        read = _key_read(node)
        if read is None:
            continue
        location = _source_of(read[0], aliases)
        if location is None:
            continue
        name = read[1]
        fields.append(Field(name=name, location=location, type="file" if _is_files(read[0]) else "string"))
    return _merge_fields([], fields)


def _is_files(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "files"


def _annotation_name(node: ast.AST | None) -> str:
    """`int` of `int`, `Optional[int]`, `int | None`, `Annotated[int, …]`; the class name of a model."""
    if node is None:
        return ""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):
        return _annotation_name(node.slice.elts[0] if isinstance(node.slice, ast.Tuple) else node.slice)
    if isinstance(node, ast.BinOp):
        left = _annotation_name(node.left)
        return left if left != "None" else _annotation_name(node.right)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return ""


def _parameter_fields(
    function: ast.FunctionDef | ast.AsyncFunctionDef, path_names: set[str], models: dict[str, ast.ClassDef]
) -> list[Field]:
    """FastAPI's inputs, from the handler's signature (a Flask view's parameters are its path's, named there)."""
    arguments = function.args.args + function.args.kwonlyargs
    defaults: list[ast.expr | None] = [None] * (len(function.args.args) - len(function.args.defaults))
    defaults += list(function.args.defaults) + list(function.args.kw_defaults)
    fields = []
    for argument, default in zip(arguments, defaults, strict=False):
        name = argument.arg
        if name in ("self", "cls") or name in path_names:
            continue
        annotation = _annotation_name(argument.annotation)
        marker = _callee(default) if isinstance(default, ast.Call) else ""
        if marker == "Depends" or annotation in NOT_INPUTS or not argument.annotation and marker == "":
            continue
        if marker in ("Form", "File", "UploadFile") or annotation == "UploadFile":
            fields.append(
                Field(
                    name=name,
                    location="form",
                    type="file" if marker == "File" or annotation == "UploadFile" else "string",
                )
            )
        elif marker == "Cookie":
            fields.append(Field(name=name, location="cookie"))
        elif marker == "Header":
            fields.append(Field(name=name.replace("_", "-"), location="header"))
        elif annotation in models:
            fields += _model_fields(models[annotation], models)
        elif marker == "Body":
            fields.append(Field(name=name, location="json", type=SIMPLE_TYPES.get(annotation, "string")))
        elif annotation in SIMPLE_TYPES or marker == "Query":
            fields.append(Field(name=name, location="query", type=SIMPLE_TYPES.get(annotation, "string")))
    return fields


def _model_fields(model: ast.ClassDef, models: dict[str, ast.ClassDef], depth: int = 0) -> list[Field]:
    """A pydantic model's annotated attributes (its bases' first), as JSON fields."""
    fields: list[Field] = []
    if depth < 4:
        for base in model.bases:
            name = _annotation_name(base)
            if name in models and name != model.name:
                fields += _model_fields(models[name], models, depth + 1)
    for statement in model.body:
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            kind = SIMPLE_TYPES.get(_annotation_name(statement.annotation), "string")
            fields.append(Field(name=statement.target.id, location="json", type=kind))
    return fields
