"""The schema, assembled from the domains, and its SDL.

``api/schema.graphql`` is the SDL of :func:`build_schema`; a test fails when the file and the
code differ. Regenerate it with ``python -m api.graphql.schema --write`` (``--check`` exits 1
when it is stale).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import strawberry
from strawberry.tools import merge_types

from api.graphql.admin.mutations import AdminMutations
from api.graphql.admin.queries import AdminQueries
from api.graphql.errors import ContagionSchemaMixin, MaskInternalErrors, RequestInfo
from api.graphql.fragility.mutations import FragilityMutations
from api.graphql.fragility.queries import FragilityQueries
from api.graphql.graph.queries import GraphQueries
from api.graphql.graph.types import Account, Asset, Oracle, Pool, Position, Protocol
from api.graphql.limits import limit_extensions
from api.graphql.runs.mutations import RunMutations
from api.graphql.runs.queries import RunQueries
from api.graphql.runs.subscriptions import RunSubscriptions
from api.graphql.scenarios.mutations import ScenarioMutations
from api.graphql.scenarios.queries import ScenarioQueries
from api.graphql.scenarios.types import FixedShock, Historical, MonteCarlo
from api.settings import ApiSettings

__all__ = ["SDL_PATH", "build_schema", "main", "schema_sdl"]

SDL_PATH = Path(__file__).resolve().parents[1] / "schema.graphql"

Query = merge_types("Query", (GraphQueries, ScenarioQueries, RunQueries, FragilityQueries,
                              AdminQueries))
Mutation = merge_types("Mutation", (ScenarioMutations, RunMutations, FragilityMutations,
                                    AdminMutations))
Subscription = merge_types("Subscription", (RunSubscriptions,))


class ContagionSchema(ContagionSchemaMixin, strawberry.Schema):
    """The strawberry schema, logging errors with the request id."""


def build_schema(settings: ApiSettings | None = None) -> strawberry.Schema:
    """The schema with the limits of ``settings`` (the defaults when None)."""
    settings = settings or ApiSettings()
    return ContagionSchema(
        query=Query, mutation=Mutation, subscription=Subscription,
        types=[Protocol, Asset, Pool, Oracle, Account, Position, MonteCarlo, FixedShock,
               Historical],
        extensions=[*limit_extensions(settings), MaskInternalErrors, RequestInfo],
    )


def schema_sdl() -> str:
    """The SDL of the schema, as ``api/schema.graphql`` holds it."""
    return str(build_schema()).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write or check api/schema.graphql.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help="write the SDL to the file")
    group.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    parser.add_argument("--path", type=Path, default=SDL_PATH, help="the SDL file")
    args = parser.parse_args(argv)
    path: Path = args.path
    sdl = schema_sdl()
    if args.write:
        path.write_text(sdl, "utf-8")
        print(f"wrote {path}")
        return 0
    if not path.exists() or path.read_text("utf-8") != sdl:
        print(f"{path} differs from the schema in the code; run "
              "`python -m api.graphql.schema --write`", file=sys.stderr)
        return 1
    print(f"{path} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
