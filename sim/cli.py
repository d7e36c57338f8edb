"""The ``mlmarket`` command line.

Exit codes: 0 success, 1 a run failed while simulating, 2 bad input (scenario, option,
output folder): one message, no traceback, nothing executed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from sim.config import ScenarioError, load_scenario, parse_override, shipped_scenarios


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: one line, exit 2 too
        self.exit(2, f"mlmarket: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="mlmarket",
        description="Agent-based simulator of blockchain marketplaces for machine learning.",
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = sub.add_parser("run", help="run a scenario and write its results")
    r.add_argument(
        "scenario",
        nargs="?",
        default="baseline",
        help="a shipped scenario name (see `mlmarket list`) or a YAML path",
    )
    r.add_argument("--seed", type=_nonneg_int, help="root seed (sets run.seed)")
    r.add_argument("--rounds", type=_pos_int, help="rounds to simulate (sets run.rounds)")
    r.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any scenario key, e.g. --set mechanisms.reward.name=numerai (repeatable)",
    )
    r.add_argument("--out", help="output folder (default: a new folder under runs/)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument(
        "--no-report", action="store_true", help="skip the HTML report (report.html, figures/)"
    )
    rp = sub.add_parser(
        "report",
        help="rebuild the HTML report of a run or sweep folder from its saved tables",
        description="Write DIR/report.html (every figure embedded; PNGs also in DIR/figures) "
        "from the files a run or a sweep saved; nothing is rerun.",
    )
    rp.add_argument("dir", metavar="DIR", help="a run folder or a sweep folder")
    sw = sub.add_parser(
        "sweep",
        help="run a parameter sweep (a sweep file) on local processes or a Dask cluster",
        description="Run every point of a sweep file for each of its seeds (the same seeds "
        "at every point), streaming one row per run to OUT/runs.parquet. Exit code 1 when "
        "some runs failed (each is recorded with its error).",
    )
    sw.add_argument("sweep", help="a sweep file (YAML) or a shipped sweep name (scenarios/sweeps)")
    sw.add_argument("--out", help="output folder (default: a new folder under runs/)")
    sw.add_argument(
        "--workers",
        type=_pos_int,
        help="worker processes on this machine (default: the cores; 1 runs in this process)",
    )
    sw.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on a Dask distributed cluster: tcp://HOST:PORT of its scheduler, or "
        "'local' for a LocalCluster of --workers processes",
    )
    sw.add_argument(
        "--resume",
        action="store_true",
        help="continue the sweep in --out: run only the runs it does not hold yet",
    )
    sw.add_argument("--quiet", action="store_true", help="no progress")
    sw.add_argument(
        "--no-report", action="store_true", help="skip the HTML report (report.html, figures/)"
    )
    # for tests of resuming and of streaming: stop after N runs; rows per part
    sw.add_argument("--max-runs", type=_pos_int, help=argparse.SUPPRESS)
    sw.add_argument("--part-rows", type=_pos_int, help=argparse.SUPPRESS)
    ck = sub.add_parser(
        "check",
        help="check incentive properties (a property file) across seeds; JUnit XML for CI",
        description="Run every property of the property files across seeds and judge it at "
        "its confidence level. Exit code 0 when every property comes out as expected, 1 "
        "otherwise (an undecided property counts as violated).",
    )
    ck.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="property files (YAML) or shipped names (scenarios/properties, e.g. essay)",
    )
    ck.add_argument("--junit", metavar="OUT.xml", help="also write the results as JUnit XML")
    ck.add_argument(
        "--seeds", type=_pos_int, metavar="N", help="run every property with exactly N seeds"
    )
    ck.add_argument(
        "--quick", action="store_true", help="each property's quick size: fewer seeds and rounds"
    )
    ck.add_argument(
        "--workers",
        type=_pos_int,
        help="worker processes on this machine (default: the cores; 1 runs in this process)",
    )
    ck.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on a Dask cluster: tcp://HOST:PORT, or 'local' for a LocalCluster",
    )
    ck.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TEXT",
        help="only the properties whose name contains TEXT (repeatable)",
    )
    ck.add_argument("--quiet", action="store_true", help="no progress lines")
    sub.add_parser("list", help="list shipped scenarios and registered mechanisms")
    c = sub.add_parser(
        "calibrate",
        help="time the secure-computation kernels on this machine and write a profile",
        description="Time the MPC and HE kernels on this machine (under a minute; a "
        "few seconds with --quick) and write a calibration profile, which scenarios name in "
        "mechanisms.privacy.profile (a path, or 'default' for the shipped one).",
    )
    c.add_argument("--out", default="profile.yaml", help="profile to write (default: profile.yaml)")
    c.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    c.add_argument(
        "--quick", action="store_true", help="fewer sizes, shorter timing: rougher numbers"
    )
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _pos_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}")
    return v


def _nonneg_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {s!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {s!r}")
    return v


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            return cmd_list()
        if args.command == "calibrate":
            return cmd_calibrate(args)
        if args.command == "check":
            return cmd_check(args)
        if args.command == "sweep":
            return cmd_sweep(args, list(sys.argv if argv is None else ["mlmarket", *argv]))
        if args.command == "report":
            return cmd_report(args)
        return cmd_run(args, list(sys.argv if argv is None else ["mlmarket", *argv]))
    except ScenarioError as e:
        print(f"mlmarket: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mlmarket: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout
        return 0


def cmd_list() -> int:
    """Print shipped scenarios and every registered rule, one per line."""
    from mechanisms.registry import load_all

    print("scenarios:")
    for name, desc in shipped_scenarios().items():
        print(f"  {name} - {desc}")
    print("mechanisms:")
    for fam, reg in load_all().items():
        for info in reg:
            params = ", ".join(f"{k}={v}" for k, v in info.defaults().items())
            line = f"  {fam}.{info.name} - {info.summary}"
            print(line + (f" [{params}]" if params else ""))
    return 0


def cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    """``mlmarket run``: validate everything, then simulate, write, summarize."""
    overrides = [parse_override(o) for o in args.overrides]
    if args.seed is not None:
        overrides.append(("run.seed", args.seed))
    if args.rounds is not None:
        overrides.append(("run.rounds", args.rounds))
    sc = load_scenario(args.scenario, overrides)

    # the simulator (mesa, scipy, pandas: seconds of imports) loads only for valid input
    from sim.model import SimulationError
    from sim.runner import blas_single_thread, collect, prepare_output
    from sim.sweep import default_workers

    if args.out:
        out = Path(args.out)
    else:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")  # noqa: UP017
        out = Path("runs") / f"{Path(args.scenario).stem}-seed{sc.run.seed}-{stamp}"
    out = prepare_output(out)

    show = not args.quiet and sys.stderr.isatty()
    t0 = time.perf_counter()
    try:
        with blas_single_thread():
            model = _simulate(sc, show, Path(args.scenario).stem, threads=default_workers())
    except SimulationError as e:
        print(f"mlmarket: run failed: {e}", file=sys.stderr)
        return 1
    result = collect(model, time.perf_counter() - t0)
    result.provenance["command"] = argv
    result.write(out)
    print(format_summary(args.scenario, result.summary, result.provenance["timing"]))
    print(f"results in {out}")
    if args.no_report:
        return 0
    return 0 if _report(out) else 1


def _report(folder: Path) -> bool:
    """Build FOLDER/report.html; on failure say so in one line (the results stay)."""
    try:
        from analysis.report import build_report

        rep = build_report(folder)
    except Exception as e:  # a report must never cost the run its results
        print(
            f"mlmarket: report failed ({type(e).__name__}: {e}); the results are saved, "
            f"`mlmarket report {folder}` retries",
            file=sys.stderr,
        )
        return False
    for name, error in rep.failed.items():
        print(f"mlmarket: report: figure {name} failed ({error})", file=sys.stderr)
    print(f"report in {rep.path} ({len(rep.figures)} figures, {rep.seconds:.1f} s)")
    return not rep.failed


def cmd_report(args: argparse.Namespace) -> int:
    """``mlmarket report DIR``: rebuild a run's or a sweep's report from its saved files."""
    from analysis.report import ReportError, folder_kind

    try:
        folder_kind(args.dir)
    except ReportError as e:
        raise ScenarioError(str(e)) from None
    return 0 if _report(Path(args.dir)) else 1


def cmd_sweep(args: argparse.Namespace, argv: list[str]) -> int:
    """``mlmarket sweep``: validate the sweep file and the folder, then run what is missing."""
    import signal

    from sim.sweep import SweepAborted, format_outcome, load_sweep, run_sweep

    if args.scheduler is not None:
        sched = args.scheduler
        if sched != "local" and "://" not in sched:
            raise ScenarioError(
                f"--scheduler {sched!r}: expected tcp://HOST:PORT (a Dask scheduler) or 'local'"
            )
        if sched != "local" and args.workers is not None:
            raise ScenarioError(
                "--workers sets the processes on this machine or of --scheduler local; "
                "a cluster at an address has its own workers"
            )
    if args.resume and not args.out:
        raise ScenarioError("--resume continues the sweep in --out; give --out")
    spec = load_sweep(args.sweep)
    if args.out:
        out = Path(args.out)
    else:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")  # noqa: UP017
        out = Path("runs") / f"sweep-{spec.name}-{stamp}"

    def terminate(signum, frame):  # SIGTERM saves finished runs like Ctrl-C does
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        outcome = run_sweep(
            spec,
            out,
            workers=args.workers,
            scheduler=args.scheduler,
            resume=args.resume,
            progress=not args.quiet,
            max_runs=args.max_runs,
            part_rows=args.part_rows or 500,
            command=argv,
        )
    except KeyboardInterrupt:
        print(
            f"mlmarket: interrupted; finished runs are saved in {out} "
            f"(`mlmarket sweep {args.sweep} --out {out} --resume` continues)",
            file=sys.stderr,
        )
        return 130
    except SweepAborted as e:
        print(f"mlmarket: sweep stopped: {e}; `--resume` continues", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    for m in outcome.unmatched_metrics:
        print(
            f"mlmarket: warning: metric {m!r} matched no value of the run summary", file=sys.stderr
        )
    for name in outcome.repaired:
        print(
            f"mlmarket: {name} was left incomplete by an earlier stop; its runs were redone",
            file=sys.stderr,
        )
    print(format_outcome(outcome, spec))
    print(f"results in {out}")
    if not args.no_report and not _report(out):
        return 1
    return 1 if outcome.failed else 0


def cmd_check(args: argparse.Namespace) -> int:
    """``mlmarket check``: validate the property files, run them, report (analysis.properties)."""
    from analysis.properties import run_check

    return run_check(
        args.files,
        junit=args.junit,
        seeds=args.seeds,
        quick=args.quick,
        workers=args.workers,
        scheduler=args.scheduler,
        only=args.only,
        progress=not args.quiet,
    )


def cmd_calibrate(args: argparse.Namespace) -> int:
    """``mlmarket calibrate``: check the output path, time the kernels, write the profile."""
    out = Path(args.out)
    if out.is_dir():
        print(f"mlmarket: error: --out {out} is a folder; give a file name", file=sys.stderr)
        return 2
    if out.exists() and not args.force:
        print(
            f"mlmarket: error: {out} exists; choose another --out or add --force to overwrite it",
            file=sys.stderr,
        )
        return 2
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"mlmarket: error: cannot create the folder of {out}: {e.strerror}", file=sys.stderr)
        return 2

    from mechanisms.privacy.calibrate import calibrate, write_profile

    t0 = time.perf_counter()
    profile = calibrate(quick=args.quick, progress=not args.quiet and sys.stderr.isatty())
    wall = time.perf_counter() - t0
    command = f"mlmarket calibrate --out {args.out}" + (" --quick" if args.quick else "")
    try:
        write_profile(profile, out, command=command)
    except OSError as e:
        print(f"mlmarket: error: cannot write {out}: {e.strerror}", file=sys.stderr)
        return 2
    print(format_calibration(profile, wall))
    print(f"profile in {out}")
    return 0


def _seconds(s: float) -> str:
    """``s`` seconds in the unit that shows it best (s, ms, us, ns)."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def format_calibration(profile: dict, wall: float) -> str:
    """A short summary of a calibration profile: the MPC fit and HE times at 2048 bits."""
    m, he = profile["mpc"], profile["he"]
    keys = he["keys"]
    bits = 2048 if 2048 in keys else sorted(keys)[len(keys) // 2]
    ops = ", ".join(f"{op.replace('_', ' ')} {_seconds(t)}" for op, t in keys[bits].items())
    return "\n".join(
        [
            f"mlmarket calibrate: {len(m['grid'])} MPC sizes, key sizes "
            f"{'/'.join(str(b) for b in keys)} ({he['backend']}), {wall:.1f} s",
            f"  mpc  {m['seconds_per_op']:.3g} s/op, {m['seconds_per_dealer_byte']:.3g} "
            f"s/dealer byte, {m['seconds_per_round']:.3g} s/round; max relative error "
            f"{100 * m['max_relative_error']:.1f} %",
            f"  he   {bits}-bit: {ops}",
        ]
    )


def _simulate(sc, show: bool, label: str, threads: int = 1):
    """Build the model and run every round, with a progress bar when ``show``."""
    from sim.model import MarketModel

    model = MarketModel(sc, threads=threads)
    bar = None
    if show:
        from tqdm import tqdm

        bar = tqdm(total=sc.run.rounds, unit="round", desc=label, file=sys.stderr)
    for _ in range(sc.run.rounds):
        model.step()
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return model


def format_summary(name: str, s: dict, timing: dict) -> str:
    """A short table of a run's headline numbers."""
    lines = [
        f"mlmarket run {name}: seed {s['seed']}, {s['rounds']} rounds, "
        f"{timing['wall_seconds']:.2f} s",
        f"  {'agent type':<12} {'ever':>7} {'at end':>7} {'mean ROI':>10}",
    ]
    for kind, n in s["agents_by_type"].items():
        roi = s["roi_by_type"].get(kind)
        shown = f"{100 * roi:+.2f} %" if roi is not None else "-"
        lines.append(f"  {kind:<12} {n:>7} {s['active_at_end'][kind]:>7} {shown:>10}")
    m, t, f = s["metamodel"], s["tokens"], s["flows"]
    lines += [
        f"  metamodel    mean corr {m['mean_corr']:+.4f} over {m['resolved_rounds']} resolved "
        f"rounds, P&L {m['total_pnl']:+,.0f} usd",
        f"  tokens       supply {t['supply_start']:,.0f} -> {t['supply_end']:,.0f} "
        f"(minted {t['minted']:,.0f}, burned {t['burned']:,.0f}); "
        f"price {t['price_start']:.3f} -> {t['price_end']:.3f} usd",
        f"  flows        data sales {f['data_sales']:,.0f}, payouts {f['payouts']:,.0f}, "
        f"slashed {f['slashed']:,.0f} tokens; {f['leaks']} leaks",
    ]
    adv, honest = s.get("adversaries", {}), s.get("honest", {})
    if adv.get("agents", 0):
        line = (
            f"  adversaries  {adv['agents']} agents, mean ROI {adv['roi_mean']:+.2%} "
            f"(honest {honest['roi_mean']:+.2%}); net {adv['transfer_tokens']:,.0f} tokens "
            "from honest participants and shared accounts"
        )
        cf = s.get("counterfactual")
        if cf:
            d = cf["damage"]
            line += (
                f"; without them the metamodel scores {d['metamodel_mean_corr']:+.4f} more "
                f"and honest payoff is {d['honest_payoff_usd']:+,.0f} usd higher"
            )
        lines.append(line)
    c = s.get("secure_compute", {})
    if c.get("core_seconds", 0) > 0:
        lines.append(
            f"  secure       {s['mechanisms']['privacy']}: {c['fees']:,.4g} tokens of compute "
            f"({c['share_of_developer_costs']:.2%} of developers' costs), latency mean "
            f"{c['latency_mean']:,.3g} s, max {c['latency_max']:,.3g} s vs deadline "
            f"{c['deadline']:,.4g} s; {c['missed_deadline']} missed"
        )
    lines.append(f"  invariants   {'ok' if s['invariants_ok'] else 'BROKEN'}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
