"""vztrace's benchmark runner: whole-process and in-process figures, side by side.

Run it through bench/run. Standard library only; any python3 can run it: the workloads
run under the python that vztrace embeds (found from `vztrace --version`).
"""
import argparse
import glob
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKLOADS = os.path.join(HERE, "workloads")


class BenchError(Exception):
    pass


def find_vztrace(explicit):
    if explicit:
        return os.path.abspath(explicit)
    found = glob.glob(os.path.join(ROOT, "build", "*", "launcher", "vztrace"))
    if not found:
        raise BenchError("no built vztrace under build/; pass --vztrace PATH")
    return max(found, key=os.path.getmtime)


def embedded_python(vztrace):
    out = subprocess.run([vztrace, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"paths from (.+)\)\s*$", out.strip().splitlines()[-1])
    if not match:
        raise BenchError(f"cannot read the embedded python from: {out!r}")
    return match.group(1), out.strip().splitlines()[-1]


def build_floor(python, directory):
    """Compiles bench/floor/vzfloor.c against the embedded python; returns its directory."""
    info = json.loads(subprocess.run(
        [python, "-c", "import json, sysconfig; print(json.dumps({'include': "
         "sysconfig.get_paths()['include'], 'suffix': sysconfig.get_config_var('EXT_SUFFIX'), "
         "'cc': (sysconfig.get_config_var('CC') or 'cc').split()[0]}))"],
        capture_output=True, text=True, check=True).stdout)
    compiler = shutil.which(info["cc"]) or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise BenchError("no C compiler found to build the floor extension")
    target = os.path.join(directory, "vzfloor" + info["suffix"])
    subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-I", info["include"],
                    os.path.join(HERE, "floor", "vzfloor.c"), "-o", target], check=True)
    return directory


def run_measured(argv, env, cwd, tmp):
    """Runs argv; returns (seconds, status, stdout, stderr, peak RSS in MiB). The peak RSS
    is the top process's, from wait4 on this same run (children are not included)."""
    out_path, err_path = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=cwd,
                                   stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    with open(out_path, errors="replace") as out, open(err_path, errors="replace") as err:
        return seconds, process.returncode, out.read(), err.read(), usage.ru_maxrss / 1024.0


def modes(python, vztrace, tmp, viztracer):
    trace = os.path.join(tmp, "trace.json")
    result = {
        "python": [python, "{script}"],
        "vztrace": [vztrace, "--quiet", "-o", trace, "{script}"],
        "vztrace --ignore-c-function": [vztrace, "--quiet", "--ignore-c-function", "-o", trace,
                                        "{script}"],
        "cProfile": [python, "-m", "cProfile", "-o", os.path.join(tmp, "out.prof"), "{script}"],
    }
    if viztracer:
        result["viztracer"] = [python, "-m", "viztracer", "--quiet", "-o",
                               os.path.join(tmp, "viz.json"), "{script}"]
    return result, trace


def trace_stats(path):
    """Reads the metadata object vztrace writes last, from the file's tail: loading a
    whole trace would raise this runner's RSS, which a child inherits as its own starting
    ru_maxrss."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 4096))
            tail = f.read().decode(errors="replace")
        start = tail.rindex('"vztrace_metadata":')
        meta = json.loads(tail[start + len('"vztrace_metadata":'):].rstrip().rstrip("}").rstrip()
                          + "}")
    except (OSError, ValueError) as error:
        raise BenchError(f"trace {path} has no readable vztrace metadata: {error}")
    slices = meta.get("slices", 0)
    if slices <= 0:
        raise BenchError(f"trace {path} has no calls")
    size = os.path.getsize(path)
    seconds = meta.get("write_seconds") or 0
    return {"bytes": size, "slices": slices, "processes": meta.get("processes", 1),
            "bytes_per_event": size / slices,
            "writer_events_per_s": slices / seconds if seconds > 0 else None}


def merge_trace_stats(runs):
    """One figure per mode: the last run's sizes (the same in every run of a deterministic
    workload) and the median writer speed, with its range, since the kernel's page cache
    makes single writes noisy."""
    merged = dict(runs[-1])
    speeds = [run["writer_events_per_s"] for run in runs if run["writer_events_per_s"]]
    merged["writer_events_per_s"] = statistics.median(speeds) if speeds else None
    merged["writer_events_per_s_min"] = min(speeds) if speeds else None
    merged["writer_events_per_s_max"] = max(speeds) if speeds else None
    return merged


def whole_process(args, python, vztrace, tmp, viztracer, env):
    table = {}
    mode_argv, trace = modes(python, vztrace, tmp, viztracer)
    scripts = sorted(glob.glob(os.path.join(WORKLOADS, "[a-z]*.py")))
    for script in scripts:
        name = os.path.splitext(os.path.basename(script))[0]
        samples = {mode: [] for mode in mode_argv}
        rss = {mode: [] for mode in mode_argv}
        stats = {}
        expected = None
        names = list(mode_argv)
        for run in range(args.runs):
            # Interleaved, and rotated so that no mode always follows the same one: a
            # trace deleted just before a run leaves page-cache memory warm or cold for it.
            order = names[run % len(names):] + names[:run % len(names)]
            for mode in order:
                template = mode_argv[mode]
                argv = [script if part == "{script}" else part for part in template]
                if os.path.exists(trace):
                    os.unlink(trace)
                seconds, status, out, err, peak = run_measured(argv, env, WORKLOADS, tmp)
                if status != 0:
                    raise BenchError(f"{name} under {mode} exited {status}:\n{err}")
                if mode == "python":
                    expected = out
                elif out != expected:
                    raise BenchError(f"{name} under {mode} printed {out!r}, python {expected!r}")
                samples[mode].append(seconds)
                rss[mode].append(peak)
                if mode.startswith("vztrace"):
                    stats.setdefault(mode, []).append(trace_stats(trace))
        base = statistics.median(samples["python"])
        table[name] = {
            mode: {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
                   "ratio": statistics.median(times) / base, "peak_rss_mib": max(rss[mode]),
                   **({"trace": merge_trace_stats(stats[mode])} if mode in stats else {})}
            for mode, times in samples.items()}
        print(f"  {name}: done", file=sys.stderr)
    return table


def writer_alone(args, vztrace, env):
    """fib's trace written to /dev/null: the writer's formatting and hand-off without the
    kernel's copy into the page cache. Read from vztrace's summary line on stderr."""
    script = os.path.join(WORKLOADS, "fib.py")
    speeds, events = [], 0
    for _ in range(args.runs):
        result = subprocess.run([vztrace, "-o", "/dev/null", script], capture_output=True,
                                text=True, env=env, cwd=WORKLOADS)
        match = re.search(r"wrote (\d+) calls .* in ([0-9.]+) s\)", result.stderr)
        if result.returncode != 0 or not match:
            raise BenchError(f"fib to /dev/null failed ({result.returncode}):\n{result.stderr}")
        events, seconds = int(match.group(1)), float(match.group(2))
        if seconds > 0:
            speeds.append(events / seconds)
    if not speeds:
        raise BenchError("fib to /dev/null: no write time above the summary's resolution")
    return {"events": events, "events_per_s": statistics.median(speeds),
            "min_events_per_s": min(speeds), "max_events_per_s": max(speeds)}


def in_process(args, python, vztrace, floor_dir, tmp, env):
    script = os.path.join(HERE, "fib_inprocess.py")
    trace = os.path.join(tmp, "fib.json")
    runs = {
        "python": [python, script, "plain"],
        "floor": [python, script, "floor", floor_dir],
        "floor with CALL": [python, script, "floor_call", floor_dir],
        "vztrace": [vztrace, "--quiet", "-o", trace, script, "traced"],
        "vztrace --ignore-c-function": [vztrace, "--quiet", "--ignore-c-function", "-o", trace,
                                        script, "traced"],
        "cProfile": [python, script, "cprofile"],
    }
    values = {mode: [] for mode in runs}
    hooks = {}
    for _ in range(args.inprocess_runs):
        for mode, argv in runs.items():
            result = subprocess.run(argv, capture_output=True, text=True, env=env)
            if result.returncode != 0:
                raise BenchError(f"fib in-process under {mode} failed:\n{result.stderr}")
            data = json.loads(result.stdout.strip().splitlines()[-1])
            values[mode].append(data["ns_per_call"])
            hooks[mode] = data["hook"]
    base = statistics.median(values["python"])
    return {mode: {"ns_per_call": statistics.median(v), "added_ns": statistics.median(v) - base,
                   "min_ns": min(v), "max_ns": max(v), "hook": hooks[mode]}
            for mode, v in values.items()}


def markdown(report):
    lines = [f"vztrace benchmark, {report['date']}, {report['cpu']}, {report['python']}",
             f"runs per mode: {report['runs']} (interleaved), scale {report['scale']}", "",
             "### Added cost per Python call (fib(25), in-process, median)", "",
             "| mode | ns per call | added ns | hook |", "|---|---:|---:|---|"]
    for mode, row in report["in_process"].items():
        lines.append(f"| {mode} | {row['ns_per_call']:.1f} | {row['added_ns']:+.1f} | "
                     f"{row['hook']} |")
    writer = report["writer_alone"]
    lines += ["", "### Writer alone (fib's trace to /dev/null: no page-cache copy)", "",
              "| events | M events/s (min-max) |", "|---:|---:|",
              f"| {writer['events']} | {writer['events_per_s'] / 1e6:.1f} "
              f"({writer['min_events_per_s'] / 1e6:.1f}-{writer['max_events_per_s'] / 1e6:.1f}) |"]
    lines += ["", "### Whole process (median wall time, min-max, ratio to python)", "",
              "| workload | mode | wall s (min-max) | ratio | peak RSS MiB | trace MB | "
              "bytes/event | writer M events/s (min-max) |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for workload, by_mode in report["whole_process"].items():
        for mode, row in by_mode.items():
            trace = row.get("trace")
            extra = ("| | |" if trace is None else
                     f"| {trace['bytes'] / 1e6:.1f} | {trace['bytes_per_event']:.0f} | "
                     + (f"{trace['writer_events_per_s'] / 1e6:.1f} "
                        f"({trace['writer_events_per_s_min'] / 1e6:.1f}-"
                        f"{trace['writer_events_per_s_max'] / 1e6:.1f}) |"
                        if trace["writer_events_per_s"] else "- |"))
            lines.append(f"| {workload} | {mode} | {row['median_s']:.3f} ({row['min_s']:.3f}-"
                         f"{row['max_s']:.3f}) | {row['ratio']:.2f} | {row['peak_rss_mib']:.0f} "
                         + (extra if trace else "| | | |"))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vztrace", help="the vztrace binary (default: newest build/*/)")
    parser.add_argument("--runs", type=int, default=5, help="runs per mode and workload")
    parser.add_argument("--inprocess-runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run of about a minute: small workloads, one run each")
    parser.add_argument("--json", default=os.path.join(ROOT, "build", "bench-results.json"))
    args = parser.parse_args()
    scale = "1"
    if args.quick:
        args.runs, args.inprocess_runs, scale = 1, 1, "0.2"
    try:
        vztrace = find_vztrace(args.vztrace)
        python, python_line = embedded_python(vztrace)
        env = dict(os.environ, VZBENCH_SCALE=scale,
                   VZBENCH_FIB_ROUNDS="5" if args.quick else "15")
        for key in [k for k in env if k.startswith("VZTRACE_")]:
            del env[key]
        viztracer = subprocess.run([python, "-c", "import viztracer"],
                                   capture_output=True).returncode == 0
        if not viztracer:
            print("bench: viztracer is not importable by the embedded python: skipped",
                  file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="vzbench-") as tmp:
            floor_dir = build_floor(python, tmp)
            print(f"bench: {vztrace} ({python_line})", file=sys.stderr)
            inproc = in_process(args, python, vztrace, floor_dir, tmp, env)
            whole = whole_process(args, python, vztrace, tmp, viztracer, env)
            writer = writer_alone(args, vztrace, env)
    except (BenchError, subprocess.CalledProcessError, OSError) as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return 1
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    report = {"date": time.strftime("%Y-%m-%d"), "cpu": f"{cpu}, {os.cpu_count()} cores",
              "python": python_line, "vztrace": vztrace, "runs": args.runs, "scale": scale,
              "quick": args.quick, "in_process": inproc, "writer_alone": writer,
              "whole_process": whole}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(report, f, indent=2)
    print(markdown(report))
    print(f"bench: results in {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
