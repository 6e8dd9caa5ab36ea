"""Creates records under a small write budget in its own process (two of these share a database).

    python -m tests.budget_worker <json config>   → prints "created <n> refused <m>"
"""

from __future__ import annotations

import asyncio
import json
import sys

from pysky_async import AsyncBskyClient, WriteBudget, WriteBudgetExhausted


async def main(config: dict[str, object]) -> None:
    async with AsyncBskyClient(username=str(config["username"]), password=str(config["password"]),
                               auth_host=str(config["auth_host"]), database_url=str(config["database_url"]),
                               write_budget=WriteBudget(hourly_points=int(str(config["points"]))),
                               auto_migrate=True) as bsky:
        await bsky.login()
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        created = refused = 0
        for n in range(int(str(config["attempts"]))):
            try:
                await bsky.create_record("com.example.budget", {"n": n}, validate=False)
                created += 1
            except WriteBudgetExhausted:
                refused += 1
        print("created", created, "refused", refused, flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
