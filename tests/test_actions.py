"""The action executor: at most once per id, every outcome a result, the loop never dies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import anyio
import httpx
import pytest

from logpulse_agent.actions.executor import ActionExecutor
from logpulse_agent.actions.journal import ActionJournal
from logpulse_agent.actions.ledger import ActionLedger
from logpulse_agent.controlplane.protocol import ActionResult, PendingAction
from logpulse_agent.state import atomic
from logpulse_agent.state.layout import Layout
from logpulse_agent.upgrade.handler import UpgradeHandler
from logpulse_agent.upgrade.launcher import Launch, SpawnRequest
from logpulse_agent.upgrade.record import InFlightUpgrade
from logpulse_agent.upgrade.upgrader import Upgrader

pytestmark = pytest.mark.anyio

INSTALL_URL = "https://get.example/install.sh"


def upgrade(action_id: str, target: object) -> PendingAction:
    return PendingAction(action_id, "upgrade_agent", {"targetVersion": target})


def unknown(action_id: str) -> PendingAction:
    return PendingAction(action_id, "reboot_host", {})


@dataclass
class World:
    """An executor over real outbox, ledger and upgrader; only the installer launch is faked."""

    tmp: Path
    http: httpx.AsyncClient
    downloads: list[str] = field(default_factory=list)
    spawned: list[SpawnRequest] = field(default_factory=list)
    outbox_at_spawn: list[tuple[ActionResult, ...]] = field(default_factory=list)
    notified: int = 0
    unit_active: bool = True
    script_status: int = 200

    def __post_init__(self) -> None:
        self.layout = Layout(self.tmp / "etc", self.tmp, self.tmp / "log")
        self.outbox = ActionJournal(self.layout.outbox)

    async def spawn(self, request: SpawnRequest) -> Launch:
        self.spawned.append(request)
        self.outbox_at_spawn.append(self.outbox.pending())
        return Launch(unit=request.unit)

    def upgrader(self, cls: type[Upgrader] = Upgrader, **kwargs: object) -> Upgrader:
        return cls(
            install_url=INSTALL_URL,
            layout=self.layout,
            http=self.http,
            spawn=self.spawn,
            unit_active=lambda unit: self.unit_active,
            **kwargs,  # type: ignore[arg-type]
        )

    def executor(
        self,
        *,
        platform: str = "linux",
        version: str = "0.1.0",
        upgrader: Upgrader | None = None,
    ) -> ActionExecutor:
        def notify() -> None:
            self.notified += 1

        handler = UpgradeHandler(
            upgrader or self.upgrader(),
            agent_version=version,
            platform=platform,
            settle=timedelta(0),
        )
        return ActionExecutor(
            journal=self.outbox,
            ledger=ActionLedger(self.layout.ledger),
            handlers={"upgrade_agent": handler},
            notify=notify,
            reconcile_interval=0.01,
        )

    def results(self) -> dict[str, ActionResult]:
        return {r.action_id: r for r in self.outbox.pending()}


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    holder: list[World] = []

    def serve(request: httpx.Request) -> httpx.Response:
        holder[0].downloads.append(str(request.url))
        return httpx.Response(holder[0].script_status, content=b"#!/bin/sh\nexit 0\n")

    async with httpx.AsyncClient(transport=httpx.MockTransport(serve)) as http:
        holder.append(World(tmp_path, http))
        yield holder[0]


async def run_until(executor: ActionExecutor, done: Callable[[], bool]) -> None:
    """Run the executor's loop until ``done()`` holds (bounded), then stop it."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(executor.run)
        with anyio.fail_after(5):
            while not done():
                await anyio.sleep(0.005)
        tg.cancel_scope.cancel()


class TestUnknownActions:
    async def test_unknown_type_is_failed(self, world: World) -> None:
        """An action type the agent does not know is reported failed and a heartbeat requested."""
        executor = world.executor()
        executor.submit([unknown("a1")])
        await run_until(executor, lambda: "a1" in world.results())
        assert world.results()["a1"] == ActionResult(
            "a1", "failed", {"error": "unsupported action type 'reboot_host'"}
        )
        assert world.notified >= 1


class TestUpgradeValidation:
    @pytest.mark.parametrize(
        "target",
        ["1.2.3; touch {marker}", "$(touch {marker})", "1.2", 123, None],
    )
    async def test_bad_target_version_fails_and_nothing_runs(
        self, world: World, target: object
    ) -> None:
        """A target that is not strictly a version is failed; nothing is fetched or launched."""
        marker = world.tmp / "x"
        if isinstance(target, str):
            target = target.format(marker=marker)
        executor = world.executor()
        executor.submit([upgrade("a1", target)])
        await run_until(executor, lambda: "a1" in world.results())
        result = world.results()["a1"]
        assert result.status == "failed"
        assert result.result["fromVersion"] == "0.1.0"
        assert "targetVersion" in result.result["error"]
        assert not marker.exists()
        assert world.downloads == [] and world.spawned == []
        assert not (world.tmp / "upgrade-inflight.json").exists()

    async def test_payload_without_target_version_fails(self, world: World) -> None:
        """An upgrade payload lacking targetVersion is failed with a clear error."""
        executor = world.executor()
        executor.submit([PendingAction("a1", "upgrade_agent", {"version": "0.2.0"})])
        await run_until(executor, lambda: "a1" in world.results())
        assert world.results()["a1"].result == {
            "error": "upgrade_agent payload has no 'targetVersion'",
            "fromVersion": "0.1.0",
        }

    @pytest.mark.parametrize("target", ["0.1.0", "v0.1.0"])
    async def test_same_version_is_done_at_once(self, world: World, target: str) -> None:
        """Upgrading to the running version is done without fetching anything."""
        executor = world.executor(version="0.1.0")
        executor.submit([upgrade("a1", target)])
        await run_until(executor, lambda: "a1" in world.results())
        assert world.results()["a1"] == ActionResult(
            "a1", "done", {"fromVersion": "0.1.0", "toVersion": "0.1.0"}
        )
        assert world.downloads == []

    async def test_kubernetes_refuses_upgrades(self, world: World) -> None:
        """On Kubernetes the action fails and names the fix: upgrade the DaemonSet image."""
        executor = world.executor(platform="kubernetes")
        executor.submit([upgrade("a1", "0.2.0")])
        await run_until(executor, lambda: "a1" in world.results())
        result = world.results()["a1"]
        assert result.status == "failed"
        assert "upgrade the DaemonSet image instead" in result.result["error"]
        assert world.downloads == [] and world.spawned == []


class TestUpgradeStart:
    async def test_acks_running_before_launching_the_installer(self, world: World) -> None:
        """``running`` is in the outbox (and a heartbeat asked for) before the installer starts."""
        executor = world.executor()
        executor.submit([upgrade("a1", "v0.2.0")])
        await run_until(executor, lambda: bool(world.spawned))
        running = ActionResult("a1", "running", {"fromVersion": "0.1.0", "toVersion": "0.2.0"})
        assert world.outbox_at_spawn == [(running,)]
        assert world.notified >= 1
        assert world.spawned[0].version == "v0.2.0"
        assert world.downloads == [INSTALL_URL]
        record = world.upgrader().inflight()
        assert record is not None and record.action_id == "a1" and record.to_version == "0.2.0"

    async def test_download_failure_is_failed_with_the_log_tail(self, world: World) -> None:
        """A 404 for the install script turns ``running`` into ``failed`` and clears the record."""
        world.script_status = 404
        executor = world.executor()
        executor.submit([upgrade("a1", "0.2.0")])
        await run_until(
            executor,
            lambda: (
                world.results().get("a1", None) is not None
                and world.results()["a1"].status == "failed"
            ),
        )
        result = world.results()["a1"].result
        assert "HTTP 404" in result["error"]
        assert result["fromVersion"] == "0.1.0"
        assert "HTTP 404" in result["log"]
        assert world.spawned == []
        assert world.upgrader().inflight() is None

    async def test_a_second_upgrade_is_refused_while_one_is_in_flight(self, world: World) -> None:
        """While one upgrade is in flight another is failed instead of racing it."""
        executor = world.executor()
        executor.submit([upgrade("a1", "0.2.0"), upgrade("a2", "0.3.0")])
        await run_until(executor, lambda: "a2" in world.results())
        assert "another upgrade" in world.results()["a2"].result["error"]
        assert len(world.spawned) == 1


class TestAtMostOnce:
    async def test_the_same_id_handed_out_twice_runs_once(self, world: World) -> None:
        """Repeated hand-outs of one id, queued or already executed, launch one installer."""
        executor = world.executor()
        executor.submit([upgrade("a1", "0.2.0"), upgrade("a1", "0.2.0")])
        executor.submit([upgrade("a1", "0.2.0")])
        await run_until(executor, lambda: bool(world.spawned))
        executor.submit([upgrade("a1", "0.2.0"), unknown("b1")])
        await run_until(executor, lambda: "b1" in world.results())
        assert len(world.spawned) == 1
        assert world.downloads == [INSTALL_URL]

    async def test_a_restarted_executor_does_not_rerun_an_action(self, world: World) -> None:
        """A new executor over the same ledger file ignores ids an earlier one picked up."""
        first = world.executor()
        first.submit([upgrade("a1", "0.2.0")])
        await run_until(first, lambda: bool(world.spawned))
        world.upgrader().clear_inflight()  # e.g. the upgrade was reconciled meanwhile
        second = world.executor()
        second.submit([upgrade("a1", "0.2.0"), unknown("b1")])
        await run_until(second, lambda: "b1" in world.results())
        assert len(world.spawned) == 1

    async def test_an_id_a_killed_agent_recorded_without_result_is_reported_failed(
        self, world: World
    ) -> None:
        """Killed between the ledger write and the result, the action handed out again is
        reported failed — neither run twice nor left to expire."""
        ActionLedger(world.tmp / "actions-seen.json").record("a1")
        executor = world.executor()
        executor.submit([upgrade("a1", "0.2.0")])
        result = world.results()["a1"]
        assert result.status == "failed" and "at most once" in result.result["error"]
        assert not world.spawned and not world.downloads
        executor.submit([upgrade("a1", "0.2.0")])
        assert len(world.outbox.pending()) == 1

    async def test_a_hand_out_during_this_processs_own_run_is_not_failed(
        self, world: World
    ) -> None:
        """The server repeating an action this process is executing is simply ignored."""
        executor = world.executor()
        executor.submit([upgrade("a1", "0.2.0")])
        await run_until(executor, lambda: bool(world.spawned))
        world.outbox.acknowledge(world.outbox.pending())  # "running" delivered
        executor.submit([upgrade("a1", "0.2.0")])
        assert world.outbox.pending() == ()

    async def test_the_in_flight_record_exists_before_running_is_announced(
        self, world: World
    ) -> None:
        """A crash right after the "running" ack still leaves a record to reconcile."""
        upgrader = world.upgrader()
        seen: list[bool] = []
        original = world.outbox.add

        def add(result: ActionResult) -> None:
            if result.status == "running":
                seen.append(upgrader.inflight() is not None)
            original(result)

        world.outbox.add = add  # type: ignore[method-assign]
        executor = world.executor(upgrader=upgrader)
        executor.submit([upgrade("a1", "0.2.0")])
        await run_until(executor, lambda: bool(world.spawned))
        assert seen == [True]

    async def test_the_ledger_keeps_only_the_newest_ids(self, tmp_path: Path) -> None:
        """The ledger is bounded: the oldest ids fall out, the newest stay seen after reopening."""
        ledger = ActionLedger(tmp_path / "seen.json", size=3)
        for action_id in ("a", "b", "c", "d"):
            ledger.record(action_id)
        reopened = ActionLedger(tmp_path / "seen.json", size=3)
        assert [reopened.seen(i) for i in ("a", "b", "c", "d")] == [False, True, True, True]

    async def test_a_corrupt_ledger_is_moved_aside(self, tmp_path: Path) -> None:
        """A torn ledger file does not stop the agent; it is kept aside and the ledger restarts."""
        path = tmp_path / "seen.json"
        path.write_text('{"ids": [1, 2')
        ledger = ActionLedger(path)
        assert not ledger.seen("1")
        assert list(tmp_path.glob("seen.json.corrupt-*"))


class TestWrites:
    async def test_a_result_costs_one_write_after_the_ledger_record(
        self, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The id reaches the ledger before the action runs; the result and "reported" reach
        the journal in one write (0.1.0 wrote the ledger a second time for every result)."""
        writes: list[str] = []
        real = atomic.write_bytes

        def spy(path: Path, data: bytes, mode: int = 0o644, **options: bool) -> None:
            writes.append(Path(path).name)
            real(path, data, mode, **options)

        monkeypatch.setattr(atomic, "write_bytes", spy)
        executor = world.executor()
        executor.submit([unknown("b1")])
        await run_until(executor, lambda: "b1" in world.results())
        assert writes == ["actions-seen.json", "outbox.json"]
        assert world.outbox.reported("b1")


class TestResilience:
    async def test_an_exception_in_an_action_fails_it_and_the_loop_goes_on(
        self, world: World
    ) -> None:
        """An unexpected error becomes that action's failed result; later actions still run."""

        class ExplodingUpgrader(Upgrader):
            async def start(self, record: InFlightUpgrade) -> None:
                raise RuntimeError("disk on fire")

        executor = world.executor(upgrader=world.upgrader(ExplodingUpgrader))
        executor.submit([upgrade("a1", "0.2.0"), unknown("b1")])
        await run_until(executor, lambda: "b1" in world.results())
        assert world.results()["a1"].status == "failed"
        assert "RuntimeError: disk on fire" in world.results()["a1"].result["error"]
        assert world.results()["b1"].status == "failed"

    async def test_an_error_outside_the_upgrade_step_is_contained_too(self, world: World) -> None:
        """Even an error in the executor's own bookkeeping fails only that action."""

        class BrokenUpgrader(Upgrader):
            def inflight(self) -> InFlightUpgrade | None:
                raise RuntimeError("state dir vanished")

        executor = world.executor(upgrader=world.upgrader(BrokenUpgrader))
        executor.submit([upgrade("a1", "0.2.0"), unknown("b1")])
        await run_until(executor, lambda: "b1" in world.results())
        assert world.results()["a1"].result == {
            "error": "unexpected error: RuntimeError: state dir vanished"
        }


class TestReconciliation:
    async def test_startup_reconcile_reports_done_before_clearing_the_record(
        self, world: World
    ) -> None:
        """After a restart as the target version, ``done`` is queued and then the record cleared."""
        world.upgrader().begin(
            InFlightUpgrade("a1", "0.1.0", "0.2.0", "2099-01-01T00:00:00Z", unit="u")
        )
        executor = world.executor(version="0.2.0")
        [result] = executor.reconcile()
        assert result == ActionResult("a1", "done", {"fromVersion": "0.1.0", "toVersion": "0.2.0"})
        assert world.outbox.pending() == (result,)
        assert world.upgrader().inflight() is None
        assert world.notified == 1

    async def test_the_loop_reports_an_installer_that_ended_without_effect(
        self, world: World
    ) -> None:
        """While the agent lives, an installer that finished without a restart becomes failed."""
        executor = world.executor()
        executor.submit([upgrade("a1", "0.2.0")])
        await run_until(executor, lambda: bool(world.spawned))
        assert world.results()["a1"].status == "running"
        world.unit_active = False
        await run_until(executor, lambda: world.results()["a1"].status == "failed")
        assert "did not take effect" in world.results()["a1"].result["error"]
        assert world.upgrader().inflight() is None
