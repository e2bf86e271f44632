"""Start a go-live, print its events until it ends, exit as `golive run` would (docs/client.md).

    python examples/pipeline.py PLAN DEPLOY_ID PREVIOUS_DEPLOY_ID
"""

import asyncio
import sys

from golive.api import Client, exit_code
from golive.views.lines import describe  # the line `golive run` prints for an event (optional)


async def main(plan: str, deploy_id: str, previous: str) -> int:
    client = Client()  # the bus of `golive up` (.golive/stack.json), or GOLIVE_NATS_URL / _USER / _PASSWORD
    run_id = await client.start(plan, deploy_id=deploy_id, previous_deploy_id=previous)
    print(f"started {run_id}")
    async for event in client.watch(run_id):  # ends after the run's run_finished
        _style, text = describe(event)
        print(f"{event.time:%H:%M:%S} {text}")
    summary = await client.status(run_id)
    print(f"{run_id}: {summary.outcome} ({summary.reason})")
    return exit_code(summary.outcome)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:4])))
