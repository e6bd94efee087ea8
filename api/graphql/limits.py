"""Limits on what one operation may ask for (defaults in :class:`api.settings.ApiSettings`).

- depth, aliases and tokens: strawberry's ``QueryDepthLimiter``, ``MaxAliasesLimiter`` and
  ``MaxTokensLimiter`` (the token limit stops the parser itself);
- cost: :class:`CostLimiter`, computed before execution from the document and its variables:
  every field that returns an object (or a list of them) costs 1, plus a fixed weight for the
  fields that walk the graph (:data:`FIELD_WEIGHTS`), and everything selected inside a
  connection (a field with ``first``/``last``, or a top-k list with ``top``) counts once per
  node of its page: ``first``, ``last``, ``top`` or the default page size (and each item of
  a top-k list costs 1, whatever it selects). Nested connections multiply, so a page of pools with a
  page of positions each is priced at what it may really fetch.
- page size: connections refuse ``first``/``last`` above the cap
  (:mod:`api.graphql.pagination`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_composite_type,
)
from graphql.utilities import get_operation_ast
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)

from api.settings import ApiSettings

__all__ = ["CACHE_SIZE", "FIELD_WEIGHTS", "CostLimiter", "limit_extensions", "operation_cost"]

#: Extra cost of fields that walk the graph store rather than look nodes up.
FIELD_WEIGHTS: dict[str, int] = {
    "Query.dependencies": 20,
    "Query.systemGraph": 50,
    "Query.contagionPaths": 50,
    "Query.stats": 10,
    "Query.compareRuns": 20,
    "Mutation.runScenario": 20,
    "Mutation.cancelScenario": 10,
    "Mutation.ingest": 100,
    "Query.fragility": 10,
    "Query.explain": 50,
    "Mutation.rescore": 100,
}

_PAGE_ARGS = ("first", "last", "top")


def _page_size(field: FieldNode, variables: Mapping[str, Any], default: int) -> int:
    sizes = []
    for arg in field.arguments or ():
        if arg.name.value not in _PAGE_ARGS:
            continue
        value: Any = None
        if isinstance(arg.value, IntValueNode):
            value = int(arg.value.value)
        elif isinstance(arg.value, VariableNode):
            value = variables.get(arg.value.name.value)
        if isinstance(value, int) and not isinstance(value, bool):
            sizes.append(max(value, 0))
    return max(sizes) if sizes else default


def _fields_of(t: GraphQLNamedType) -> Mapping[str, Any]:
    return getattr(t, "fields", {}) or {}


def _selection_cost(schema: GraphQLSchema, selection: SelectionSetNode, parent: GraphQLNamedType,
                    fragments: Mapping[str, FragmentDefinitionNode],
                    variables: Mapping[str, Any], default_page: int, seen: frozenset[str]
                    ) -> int:
    total = 0
    for node in selection.selections:
        if isinstance(node, FieldNode):
            name = node.name.value
            field = _fields_of(parent).get(name)
            if field is None:  # __typename, introspection, or unknown (validation reports it)
                continue
            named = get_named_type(field.type)
            total += FIELD_WEIGHTS.get(f"{parent.name}.{name}",
                                       1 if is_composite_type(named) else 0)
            if node.selection_set is not None:
                inner = _selection_cost(schema, node.selection_set, named, fragments, variables,
                                        default_page, seen)
                paged = any(a in field.args for a in _PAGE_ARGS)
                if "top" in field.args:  # a top-k list: each of its k items costs 1 too
                    inner += 1
                total += inner * (_page_size(node, variables, default_page) if paged else 1)
        elif isinstance(node, InlineFragmentNode):
            cond = (schema.get_type(node.type_condition.name.value)
                    if node.type_condition is not None else parent)
            total += _selection_cost(schema, node.selection_set, cond or parent, fragments,
                                     variables, default_page, seen)
        elif isinstance(node, FragmentSpreadNode):
            frag = fragments.get(node.name.value)
            if frag is None or frag.name.value in seen:
                continue
            cond = schema.get_type(frag.type_condition.name.value) or parent
            total += _selection_cost(schema, frag.selection_set, cond, fragments, variables,
                                     default_page, seen | {frag.name.value})
    return total


def operation_cost(schema: GraphQLSchema, document: DocumentNode, operation_name: str | None,
                   variables: Mapping[str, Any] | None, *, default_page: int) -> int:
    """The cost of the operation ``operation_name`` of ``document`` (see the module doc)."""
    op = get_operation_ast(document, operation_name)
    if not isinstance(op, OperationDefinitionNode):
        return 0
    root = schema.get_root_type(op.operation)
    if root is None:
        return 0
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    return _selection_cost(schema, op.selection_set, root, fragments, variables or {},
                           default_page, frozenset())


class CostLimiter(SchemaExtension):
    """Refuse an operation whose cost exceeds ``max_cost`` before it runs (one error with
    ``extensions.code = COST_LIMIT``); the cost of every operation is reported in the result's
    ``extensions.cost``."""

    def __init__(self, max_cost: int, default_page: int) -> None:
        self.max_cost = max_cost
        self.default_page = default_page

    def on_execute(self) -> Iterator[None]:
        ec = self.execution_context
        if ec.graphql_document is not None:
            cost = operation_cost(ec.schema._schema, ec.graphql_document, ec.operation_name,
                                  ec.variables, default_page=self.default_page)
            if hasattr(ec.context, "cost"):
                ec.context.cost = cost
            if cost > self.max_cost:
                ec.result = ExecutionResult(data=None, errors=[GraphQLError(
                    f"query cost {cost} exceeds the limit of {self.max_cost} (each object "
                    "field costs 1, times the page size of every connection around it; ask "
                    "for smaller pages or fewer nested connections)",
                    extensions={"code": "COST_LIMIT"})])
        yield


#: documents whose parse and validation results are kept (least recently used go first)
CACHE_SIZE = 512


def limit_extensions(settings: ApiSettings) -> list[Callable[[], SchemaExtension]]:
    """Factories of the limiting extensions (one fresh instance per request).

    The depth and alias rules are built once, so that a document validated before (same
    text, same rules) is answered from strawberry's validation cache; parsing is cached too,
    under the token limit.
    """
    rules = [*QueryDepthLimiter(max_depth=settings.max_depth).validation_rules,
             *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules]
    return [
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: ParserCache(maxsize=CACHE_SIZE),
        lambda: AddValidationRules(rules),
        lambda: ValidationCache(maxsize=CACHE_SIZE),
        lambda: CostLimiter(settings.max_cost, settings.default_page_size),
    ]
