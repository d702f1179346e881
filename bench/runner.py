"""vztrace's benchmark runner: in-process cost per call, the encoder alone, start-up,
whole-process figures for each output format, and vztrace's memory by run length.

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


SUMMARY = re.compile(r"wrote (\d+) calls(?: from (\d+) process(?:es)?)? \(")


def summary_calls(stderr, what):
    """The calls and processes in vztrace's summary line on stderr: `vztrace: wrote N calls
    [from K processes] (SIZE, finished in S s) to FILE; ...`."""
    match = SUMMARY.search(stderr)
    if not match:
        raise BenchError(f"{what}: no 'wrote N calls' summary line on stderr:\n{stderr}")
    finished = re.search(r"finished in ([0-9.]+) s\)", stderr[match.start():])
    return {"calls": int(match.group(1)), "processes": int(match.group(2) or 1),
            "finish_s": float(finished.group(1)) if finished else None}


def modes(python, vztrace, tmp, viztracer):
    """Each mode's argv template and the trace file it writes (None: not a vztrace trace).
    vztrace runs without --quiet: its summary line on stderr gives the calls written."""
    pftrace, json_trace = os.path.join(tmp, "trace.pftrace"), os.path.join(tmp, "trace.json")
    result = {
        "python": ([python, "{script}"], None),
        "vztrace": ([vztrace, "-o", pftrace, "{script}"], pftrace),
        "vztrace --compress": ([vztrace, "--compress", "-o", pftrace, "{script}"], pftrace),
        "vztrace json": ([vztrace, "-o", json_trace, "{script}"], json_trace),
        "vztrace --ignore-c-function": ([vztrace, "--ignore-c-function", "-o", pftrace,
                                         "{script}"], pftrace),
        "cProfile": ([python, "-m", "cProfile", "-o", os.path.join(tmp, "out.prof"), "{script}"],
                     None),
    }
    if viztracer:
        result["viztracer"] = ([python, "-m", "viztracer", "--quiet", "-o",
                                os.path.join(tmp, "viz.json"), "{script}"], None)
    return result


def trace_stats(path, stderr, what):
    """Calls from vztrace's summary line, bytes from the file's size: no trace is read,
    since loading one would raise this runner's RSS, which a child inherits as its own
    starting ru_maxrss (and Perfetto's protobuf would need decoding)."""
    summary = summary_calls(stderr, what)
    if summary["calls"] <= 0:
        raise BenchError(f"{what}: the trace has no calls")
    try:
        size = os.path.getsize(path)
    except OSError as error:
        raise BenchError(f"{what}: no trace written: {error}")
    return {"bytes": size, "calls": summary["calls"], "processes": summary["processes"],
            "bytes_per_call": size / summary["calls"], "finish_s": summary["finish_s"]}


def merge_trace_stats(runs):
    """One figure per mode: the last run's sizes (the same in every run of a deterministic
    workload, give or take a call) and the median time spent finishing at exit."""
    merged = dict(runs[-1])
    finish = [run["finish_s"] for run in runs if run["finish_s"] is not None]
    merged["finish_s"] = statistics.median(finish) if finish else None
    return merged


def whole_process(args, python, vztrace, tmp, viztracer, env):
    table = {}
    mode_argv = modes(python, vztrace, tmp, viztracer)
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
            # python runs first in the first round, so every output is checked against it.
            order = names[run % len(names):] + names[:run % len(names)]
            for mode in order:
                template, trace = mode_argv[mode]
                argv = [script if part == "{script}" else part for part in template]
                for _, old in mode_argv.values():
                    if old and os.path.exists(old):
                        os.unlink(old)
                seconds, status, out, err, peak = run_measured(argv, env, WORKLOADS, tmp)
                if status != 0:
                    raise BenchError(f"{name} under {mode} exited {status}:\n{err}")
                if mode == "python":
                    expected = out
                elif expected is not None and out != expected:
                    raise BenchError(f"{name} under {mode} printed {out!r}, python {expected!r}")
                samples[mode].append(seconds)
                rss[mode].append(peak)
                if trace:
                    stats.setdefault(mode, []).append(
                        trace_stats(trace, err, f"{name} under {mode}"))
        for _, old in mode_argv.values():
            if old and os.path.exists(old):
                os.unlink(old)
        base = statistics.median(samples["python"])
        table[name] = {
            mode: {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
                   "ratio": statistics.median(times) / base, "peak_rss_mib": max(rss[mode]),
                   **({"trace": merge_trace_stats(stats[mode])} if mode in stats else {})}
            for mode, times in samples.items()}
        print(f"  {name}: done", file=sys.stderr)
    return table


ENCODER_TARGET_CALLS_PER_S = 20e6
ENCODER_TARGET_BYTES_PER_CALL = 26


def encoder_alone(args, vztrace):
    """bench/encoder's vztrace_encoder_bench, built at the top of the build directory that
    holds launcher/vztrace: the writer's encoding rate on one core, apart from any program.
    Returns {"status": "not built", ...} when the binary is absent, so the rest still runs."""
    build = os.path.dirname(os.path.dirname(os.path.realpath(vztrace)))
    binary = os.path.join(build, "vztrace_encoder_bench")
    depth = "22" if args.quick else "27"
    if not os.access(binary, os.X_OK):
        print(f"bench: {binary} is not built: encoder alone skipped", file=sys.stderr)
        return {"status": "not built", "binary": binary, "depth": int(depth), "formats": {}}
    result = subprocess.run([binary, depth], capture_output=True, text=True)
    if result.returncode != 0:
        raise BenchError(f"{binary} {depth} exited {result.returncode}:\n{result.stderr}")
    formats = {}
    for line in result.stdout.splitlines():
        if line.strip().startswith("{"):
            data = json.loads(line)
            formats[data["format"]] = {"calls_per_s": data["calls_per_s"],
                                       "bytes_per_call": data["bytes_per_call"]}
    if not formats:
        raise BenchError(f"{binary} {depth} printed no format line:\n{result.stdout}")
    return {"status": "ok", "binary": binary, "depth": int(depth), "formats": formats}


MEMORY_TARGET_MIB = 64


def memory_by_length(args, python, vztrace, tmp, env):
    """oop.py and thread_churn.py at growing lengths, once under python and once under
    vztrace: streaming should keep vztrace's own memory (the RSS difference) flat however
    long the run, and however many threads have come and gone."""
    trace = os.path.join(tmp, "trace.pftrace")
    rows = []
    for workload in ("oop", "thread_churn"):
        script = os.path.join(WORKLOADS, workload + ".py")
        for scale in (["0.05", "0.5", "1"] if args.quick else ["1", "10", "100"]):
            scaled_env = dict(env, VZBENCH_SCALE=scale)
            row = {"workload": workload, "scale": float(scale)}
            outputs = {}
            for mode, argv in (("python", [python, script]),
                               ("vztrace", [vztrace, "-o", trace, script])):
                if os.path.exists(trace):
                    os.unlink(trace)
                seconds, status, out, err, peak = run_measured(argv, scaled_env, WORKLOADS, tmp)
                what = f"{workload} at scale {scale} under {mode}"
                if status != 0:
                    raise BenchError(f"{what} exited {status}:\n{err}")
                outputs[mode] = out
                row[f"{mode}_s"], row[f"{mode}_rss_mib"] = seconds, peak
                if mode == "vztrace":
                    stats = trace_stats(trace, err, what)
                    row["calls"], row["trace_bytes"] = stats["calls"], stats["bytes"]
                    os.unlink(trace)
            if outputs["vztrace"] != outputs["python"]:
                raise BenchError(f"{workload} at scale {scale}: vztrace printed "
                                 f"{outputs['vztrace']!r}, python {outputs['python']!r}")
            row["added_rss_mib"] = row["vztrace_rss_mib"] - row["python_rss_mib"]
            rows.append(row)
            print(f"  {workload} x{scale}: done", file=sys.stderr)
    return {"target_added_mib": MEMORY_TARGET_MIB, "rows": rows,
            "within_target": all(row["added_rss_mib"] < MEMORY_TARGET_MIB for row in rows)}


STARTUP_TARGET_RATIO = 1.3


def startup(args, python, vztrace, tmp, env):
    """`-c pass` under python and under vztrace, interleaved: what tracing adds to a
    program that does nothing (the embedding, the hook, opening and closing the trace).
    Beside them, where that time goes, step by step: vztrace tracing nothing (a process
    whose root is another, with no directory for parts: the embedding and the command line
    alone); the machinery recording nothing (the hook --ignore-c-function picks, installed,
    with --include-files naming no file: the trace's files, threads and summary); Python calls recorded (--ignore-c-function); then C calls too, exactly (the
    default: the profile hook on 3.11, sys.monitoring with CALL at every call site on
    3.12+)."""
    directory = os.path.join(tmp, "startup")
    os.makedirs(directory, exist_ok=True)
    # Many runs: on a shared VM one run of either may take 1.5x another.
    runs = 10 if args.quick else 60
    nothing = os.path.join(directory, "no-such-file")
    # In the order of the steps (the table of where the time goes lists them so).
    argvs = {
        "python": ([python, "-c", "pass"], env),
        # The output by the environment, as a child gets it: an -o on the command line
        # would make it a root of its own.
        "vztrace, nothing traced": ([vztrace, "-c", "pass"],
                                    dict(env, VZTRACE_ROOT_PID="1",
                                         VZTRACE_OUTPUT="untraced.pftrace")),
        "vztrace, nothing recorded": ([vztrace, "--ignore-c-function", "--include-files",
                                       nothing, "-o", "nothing.pftrace", "-c", "pass"], env),
        "vztrace --ignore-c-function": ([vztrace, "--ignore-c-function", "-o",
                                         "python-calls.pftrace", "-c", "pass"], env),
        "vztrace": ([vztrace, "-o", "trace.pftrace", "-c", "pass"], env),
    }
    samples = {mode: [] for mode in argvs}
    for _ in range(runs):
        for mode, (argv, run_env) in argvs.items():
            seconds, status, _, err, _ = run_measured(argv, run_env, directory, tmp)
            if status != 0:
                raise BenchError(f"-c pass under {mode} exited {status}:\n{err}")
            samples[mode].append(seconds)
    if os.path.exists(os.path.join(directory, "untraced.pftrace")):
        raise BenchError("vztrace with nothing traced wrote a trace")
    result = {mode: {"median_s": statistics.median(times), "min_s": min(times),
                     "max_s": max(times), "p10_s": sorted(times)[len(times) // 10]}
              for mode, times in samples.items()}
    result["runs"] = runs
    result["steps"] = list(argvs)
    result["ratio"] = result["vztrace"]["median_s"] / result["python"]["median_s"]
    result["p10_ratio"] = result["vztrace"]["p10_s"] / result["python"]["p10_s"]
    result["target_ratio"] = STARTUP_TARGET_RATIO
    return result


REPORT_CALLS = 15_000_000


# The after-run commands timed on report_speed's trace, besides `report`: the exports that
# sum the calls as they read them (folded, pstats) and one that keeps them whole.
EXPORTS = ("folded", "pstats", "speedscope.json")


def report_speed(args, vztrace, tmp, env):
    """`vztrace report` and `vztrace export` on a trace of 15 M calls (1.5 M with --quick,
    which sympy's tests under pytest make): seconds and peak RSS, against the trace's
    size."""
    calls = REPORT_CALLS // 10 if args.quick else REPORT_CALLS
    trace = os.path.join(tmp, "report.pftrace")
    run_env = dict(env, VZBENCH_CALLS=str(calls))
    argv = [vztrace, "--quiet", "--ignore-c-function", "-o", trace,
            os.path.join(HERE, "report_calls.py")]
    seconds, status, _, err, _ = run_measured(argv, run_env, tmp, tmp)
    if status != 0:
        raise BenchError(f"tracing the report workload failed:\n{err}")
    size = os.path.getsize(trace)
    seconds, status, out, err, peak = run_measured([vztrace, "report", trace], env, tmp, tmp)
    if status != 0:
        raise BenchError(f"vztrace report failed:\n{err}")
    exports = {}
    for extension in EXPORTS:
        exported = os.path.join(tmp, "report." + extension)
        export_s, status, _, err, export_peak = run_measured(
            [vztrace, "export", "-o", exported, trace], env, tmp, tmp)
        if status != 0:
            raise BenchError(f"vztrace export -o {exported} failed:\n{err}")
        exports[extension] = {"seconds": export_s, "peak_rss_mib": export_peak,
                              "output_mib": os.path.getsize(exported) / 2**20}
        os.unlink(exported)
    os.unlink(trace)
    return {"calls": calls, "trace_mib": size / 2**20, "seconds": seconds, "peak_rss_mib": peak,
            "exports": exports}


def in_process(args, python, vztrace, floor_dir, tmp, env):
    script = os.path.join(HERE, "fib_inprocess.py")
    trace = os.path.join(tmp, "fib.pftrace")
    # The frame hook (the default with --ignore-c-function, 3.11 and 3.12) beside the
    # mechanism it gives way to, each with and without C calls. On 3.13 the frame hook is
    # not exact, so auto does not take it: --hook frame still shows what it costs.
    minor = int(subprocess.run([python, "-c", "import sys; print(sys.version_info[1])"],
                               capture_output=True, text=True, check=True).stdout)
    other = "monitoring" if minor >= 12 else "profile"
    runs = {
        "python": [python, script, "plain"],
        "floor": [python, script, "floor", floor_dir],
        "floor with CALL": [python, script, "floor_call", floor_dir],
        "floor frame hook": [python, script, "floor_frame", floor_dir],
        "floor frame hook, clock_gettime": [python, script, "floor_frame_monotonic", floor_dir],
        "floor frame hook, C calls too": [python, script, "floor_frame_call", floor_dir],
        "vztrace": [vztrace, "--quiet", "-o", trace, script, "traced"],
        "vztrace --ignore-c-function": [vztrace, "--quiet", "--ignore-c-function", "-o", trace,
                                        script, "traced"],
        f"vztrace --hook {other}": [vztrace, "--quiet", "--hook", other, "-o", trace, script,
                                    "traced"],
        f"vztrace --hook {other} --ignore-c-function": [
            vztrace, "--quiet", "--hook", other, "--ignore-c-function", "-o", trace, script,
            "traced"],
        # The recording controls: fib's own file left out (decided once per code object),
        # and the writer-side filters (the hooks record as usual; the writer drops).
        "vztrace --exclude-files (fib left out)": [
            vztrace, "--quiet", "--exclude-files", script, "-o", trace, script, "traced"],
        "vztrace --max-stack-depth 5": [vztrace, "--quiet", "--max-stack-depth", "5", "-o",
                                        trace, script, "traced"],
        "vztrace --min-duration 10us": [vztrace, "--quiet", "--min-duration", "10us", "-o",
                                        trace, script, "traced"],
        "cProfile": [python, script, "cprofile"],
    }
    if minor >= 13:
        runs["vztrace --hook frame --ignore-c-function"] = [
            vztrace, "--quiet", "--hook", "frame", "--ignore-c-function", "-o", trace, script,
            "traced"]
    if args.log_options:
        # What each --log-* option costs when on (off, the modes above run the plain hooks).
        for options in (["--log-func-args"], ["--log-func-retval"], ["--log-exception"],
                        ["--log-audit"], ["--log-gc", "--log-print", "--log-async"]):
            runs["vztrace " + " ".join(options)] = [vztrace, "--quiet", *options, "-o", trace,
                                                    script, "traced"]
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


def recording_clock(vztrace, trace, env):
    """The clock vztrace read in the last in-process run, as its trace's metadata says: the
    TSC where it is the kernel's clocksource, else clock_gettime, which costs more a read
    and decides which frame-hook floor is vztrace's own."""
    result = subprocess.run([vztrace, "report", "--format", "json", "--limit", "1", trace],
                            capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise BenchError(f"vztrace report of the in-process trace failed:\n{result.stderr}")
    return json.loads(result.stdout)["recording"].get("clock", "unknown")


def clock_costs(python, floor_dir, env):
    """What a time stamp costs here (vzfloor.clock_costs): a recorded Python call takes two,
    and on a VM a time-stamp counter read can cost several times what it does on bare metal,
    which moves every figure of the in-process table that reads the clock."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import vzfloor; "
            "print(json.dumps(vzfloor.clock_costs()))")
    result = subprocess.run([python, "-c", code, floor_dir], capture_output=True, text=True,
                            env=env)
    if result.returncode != 0:
        raise BenchError(f"vzfloor.clock_costs failed:\n{result.stderr}")
    return json.loads(result.stdout)


def span(row, scale=1.0, digits=3):
    """median (min-max) of a row with median_s/min_s/max_s."""
    return (f"{row['median_s'] * scale:.{digits}f} ({row['min_s'] * scale:.{digits}f}-"
            f"{row['max_s'] * scale:.{digits}f})")


def markdown(report):
    lines = [f"vztrace benchmark, {report['date']}, {report['cpu']}, {report['python']}",
             f"runs per mode: {report['runs']} (interleaved), scale {report['scale']}"]
    if report["in_process"] is not None:
        lines += ["", "### Added cost per Python call (fib(25), in-process, median)", "",
                  "| mode | ns per call | added ns | hook |", "|---|---:|---:|---|"]
        for mode, row in report["in_process"].items():
            lines.append(f"| {mode} | {row['ns_per_call']:.1f} | {row['added_ns']:+.1f} | "
                         f"{row['hook']} |")
        clock = report["clock"]
        lines += ["", f"One time-stamp counter read: {clock['tsc_read_ns']:.1f} ns; one "
                  f"clock_gettime(CLOCK_MONOTONIC): {clock['clock_gettime_ns']:.1f} ns (back to "
                  "back, best of 5 rounds of 1 M). A recorded Python call reads the clock "
                  "twice, as the frame-hook floors do.",
                  "", f"vztrace read {clock['vztrace_clock']} (the kernel's clocksource: "
                  f"{clock['kernel_clocksource']}); its own floor is the frame-hook floor with "
                  "that clock: "
                  + ("`floor frame hook`." if clock["vztrace_clock"] == "tsc"
                     else "`floor frame hook, clock_gettime`.")]
    encoder = report["encoder_alone"]
    if encoder is not None:
        lines += ["", f"### Encoder alone (vztrace_encoder_bench {encoder['depth']}, one core; "
                  f"target >= {ENCODER_TARGET_CALLS_PER_S / 1e6:.0f} M calls/s and "
                  f"<= {ENCODER_TARGET_BYTES_PER_CALL} bytes/call)", "",
                  "| format | M calls/s | bytes/call |", "|---|---:|---:|"]
        if encoder["status"] != "ok":
            lines.append(f"| {encoder['status']} ({encoder['binary']}) | - | - |")
        for name, row in encoder["formats"].items():
            lines.append(f"| {name} | {row['calls_per_s'] / 1e6:.1f} | "
                         f"{row['bytes_per_call']:.2f} |")
    start = report["startup"]
    if start is not None:
        lines += ["", f"### Start-up (`-c pass`, median of {start['runs']} interleaved runs, "
                  f"min-max; target <= {start['target_ratio']}x)", "",
                  "| python ms | vztrace ms | ratio | ratio of the 10th percentiles |",
                  "|---:|---:|---:|---:|",
                  f"| {span(start['python'], scale=1e3, digits=1)} | "
                  f"{span(start['vztrace'], scale=1e3, digits=1)} | {start['ratio']:.2f} | "
                  f"{start['p10_ratio']:.2f} |",
                  "", "Where the time goes (10th percentiles: the runs the VM disturbed least):",
                  "", "| run | ms (median) | ms (10th percentile) | added to python's |",
                  "|---|---:|---:|---:|"]
        base = start["python"]["p10_s"]
        for mode in start["steps"]:
            row = start[mode]
            lines.append(f"| {mode} | {row['median_s'] * 1e3:.1f} | {row['p10_s'] * 1e3:.1f} | "
                         f"{(row['p10_s'] - base) * 1e3:+.1f} |")
    whole = report["whole_process"]
    if whole is not None:
        lines += ["", "### Whole process (median wall time, min-max, ratio to python)", "",
                  "| workload | mode | wall s (min-max) | ratio | peak RSS MiB | calls | "
                  "trace MB | bytes/call |", "|---|---|---:|---:|---:|---:|---:|---:|"]
        for workload, by_mode in whole.items():
            for mode, row in by_mode.items():
                trace = row.get("trace")
                extra = ("| | | |" if trace is None else
                         f"| {trace['calls']} | {trace['bytes'] / 1e6:.1f} | "
                         f"{trace['bytes_per_call']:.1f} |")
                lines.append(f"| {workload} | {mode} | {span(row)} | {row['ratio']:.2f} | "
                             f"{row['peak_rss_mib']:.0f} {extra}")
    memory = report["memory_by_length"]
    if memory is not None:
        lines += ["", "### vztrace's own memory by run length (one run each; target: "
                  f"vztrace - python < {memory['target_added_mib']} MiB at every length)", "",
                  "| workload | scale | calls | trace MB | python s | vztrace s | "
                  "python RSS MiB | vztrace RSS MiB | difference MiB |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for row in memory["rows"]:
            lines.append(f"| {row.get('workload', 'oop')} | {row['scale']:g}x | {row['calls']} | "
                         f"{row['trace_bytes'] / 1e6:.1f} | "
                         f"{row['python_s']:.2f} | {row['vztrace_s']:.2f} | "
                         f"{row['python_rss_mib']:.0f} | {row['vztrace_rss_mib']:.0f} | "
                         f"{row['added_rss_mib']:+.0f} |")
    rep = report["report"]
    if rep is not None:
        lines += ["", f"### `vztrace report` and `export` ({rep['calls']} calls, a Perfetto "
                  f"trace of {rep['trace_mib']:.0f} MiB, one thread)", "",
                  "| command | seconds | peak RSS MiB | output MiB |", "|---|---:|---:|---:|",
                  f"| report | {rep['seconds']:.2f} | {rep['peak_rss_mib']:.0f} | |"]
        for extension, row in rep["exports"].items():
            lines.append(f"| export -o x.{extension} | {row['seconds']:.2f} | "
                         f"{row['peak_rss_mib']:.0f} | {row['output_mib']:.0f} |")
    return "\n".join(lines)


PARTS = ("in_process", "encoder_alone", "startup", "whole_process", "memory_by_length", "report")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vztrace", help="the vztrace binary (default: newest build/*/)")
    parser.add_argument("--runs", type=int, default=5, help="runs per mode and workload")
    parser.add_argument("--inprocess-runs", type=int, default=5)
    parser.add_argument("--log-options", action="store_true",
                        help="also measure each --log-* option on (in-process)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run of a couple of minutes: small workloads, one run each")
    parser.add_argument("--json", default=os.path.join(ROOT, "build", "bench-results.json"))
    parser.add_argument("--only", action="append", choices=PARTS, metavar="PART",
                        help=f"measure this part alone (repeatable): {', '.join(PARTS)}")
    args = parser.parse_args()
    wanted = set(args.only or PARTS)
    scale = "1"
    if args.quick:
        args.runs, args.inprocess_runs, scale = 1, 1, "0.05"
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
            print(f"bench: {vztrace} ({python_line})", file=sys.stderr)
            inproc = clock = encoder = start = whole = memory = report_run = None
            if "in_process" in wanted:
                floor_dir = build_floor(python, tmp)
                inproc = in_process(args, python, vztrace, floor_dir, tmp, env)
                clock = clock_costs(python, floor_dir, env)
                clock["vztrace_clock"] = recording_clock(vztrace, os.path.join(tmp, "fib.pftrace"),
                                                         env)
                try:
                    with open("/sys/devices/system/clocksource/clocksource0/"
                              "current_clocksource") as f:
                        clock["kernel_clocksource"] = f.read().strip()
                except OSError:
                    clock["kernel_clocksource"] = "unknown"
            if "encoder_alone" in wanted:
                encoder = encoder_alone(args, vztrace)
            if "startup" in wanted:
                start = startup(args, python, vztrace, tmp, env)
            if "whole_process" in wanted:
                whole = whole_process(args, python, vztrace, tmp, viztracer, env)
            if "memory_by_length" in wanted:
                memory = memory_by_length(args, python, vztrace, tmp, env)
            if "report" in wanted:
                report_run = report_speed(args, vztrace, tmp, env)
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
              "quick": args.quick, "in_process": inproc, "clock": clock,
              "encoder_alone": encoder,
              "startup": start, "whole_process": whole, "memory_by_length": memory,
              "report": report_run}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(report, f, indent=2)
    print(markdown(report))
    print(f"bench: results in {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
