#!/usr/bin/env python3
"""Differential test: run the same random scenarios against upstream Gnocchi
4.7.1 and gnocchi-rs, report every difference in status codes and bodies.

    scripts/compare-with-upstream.py --upstream http://127.0.0.1:8051 \
        --ours http://127.0.0.1:8061 --seed 1 --scenarios 30

Stdlib only. Deterministic given --seed (scenario i draws from
random.Random("SEED:i")); only the archive policy names carry a per-run token
so that reruns against the same servers do not collide.

Each scenario creates on both servers a random archive policy, metrics A, B
(B's points partly overlap A's) and H (for hostile input), posts random batches
of measures (processing them between batches with ?refresh=true or only at the
end), then compares:
  * GET /v1/metric/ID/measures for every aggregation method x granularity,
    plus start/stop/resample variants;
  * POST /v1/aggregates with random operations (metric, aggregate, arithmetic,
    rolling, resample, unary...) and fill/needed_overlap/granularity/start/stop;
  * GET /v1/aggregation/metric?metric=A&metric=B&...;
  * hostile inputs (bad timestamps/values/types, unknown ids, bad params).

Comparison: status codes; for 2xx the JSON bodies, strings exactly, numbers with
relative tolerance 1e-9 (exact-equality misses within tolerance are reported as
"last-digit"), int-vs-float as "number-type"; for 4xx the `description`.
Server-generated metric ids are replaced by <A>/<B>/<H> before comparing, and
`aggregation_methods` lists (a Python set upstream, so unordered) are sorted.
Every difference is classified (classify()) as one of the findings of
docs/upstream-comparison.md that are kept on purpose, or as UNDOCUMENTED;
after each scenario, classify_retention() reads every stored series back from
both servers to mark those that differ by finding 13 (upstream's retention per
granularity, taken from whichever method its set visits last).
Exit status 1 if any difference is undocumented.
"""
import argparse
import base64
import collections
import datetime
import json
import math
import random
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

REL_TOL = 1e-9
BASIC_METHODS = ["mean", "sum", "last", "max", "min", "std", "median",
                 "first", "count"]
# aggregation functions usable in (aggregate ...), (rolling ...), (resample ...)
AGG_FUNCS = ["mean", "median", "std", "min", "max", "sum", "var", "count"]
# names tried in (resample ...): upstream's schema takes the eight above and
# their rate: forms only; the others must be refused (400) as upstream does
RESAMPLE_FUNCS = AGG_FUNCS + ["rate:mean", "rate:count", "rate:max", "first",
                              "last", "50pct", "99pct", "rate:last"]
# NaN and infinities written as query parameters or operation arguments
NONFINITE = ["nan", "NaN", "inf", "-inf", "Infinity", "1e400"]
GRANULARITIES = [1, 5, 10, 60, 300, 3600]
FILLS = [None, None, "0", "-1.5", "null", "dropna", "ffill", "bfill",
         "full_ffill", "full_bfill"]


# --------------------------------------------------------------------- HTTP
class Resp(object):
    def __init__(self, status, text, data, ok_json, elapsed):
        self.status = status
        self.text = text
        self.data = data
        self.ok_json = ok_json
        self.elapsed = elapsed


class Server(object):
    def __init__(self, name, base, user="admin"):
        self.name = name
        self.base = base.rstrip("/")
        self.auth = "Basic " + base64.b64encode(
            ("%s:" % user).encode()).decode()
        self.ids = {}  # placeholder -> real id
        self.requests = 0
        self.time = 0.0

    def call(self, method, path, query=None, body=None, raw=None):
        url = self.base + path
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        data = None
        if raw is not None:
            data = raw if isinstance(raw, bytes) else raw.encode()
        elif body is not None:
            data = json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", self.auth)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        t0 = time.time()
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                status, text = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        except Exception as e:  # connection refused, reset, timeout
            status, text = 0, ("%s: %s" % (type(e).__name__, e)).encode()
        elapsed = time.time() - t0
        self.requests += 1
        self.time += elapsed
        text = text.decode("utf-8", "replace")
        try:
            parsed, ok = (json.loads(text), True) if text.strip() else (None, True)
        except ValueError:
            parsed, ok = None, False
        return Resp(status, text, parsed, ok, elapsed)


# -------------------------------------------------------------- comparison
def canon(obj, ids):
    """Replace real ids (values of `ids`) by their placeholders, sort
    aggregation_methods."""
    if isinstance(obj, str):
        for ph, real in ids.items():
            if real in obj:
                obj = obj.replace(real, ph)
        return obj
    if isinstance(obj, list):
        return [canon(x, ids) for x in obj]
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            v = canon(v, ids)
            if k == "aggregation_methods" and isinstance(v, list):
                v = sorted(v, key=str)
            if k == "references" and isinstance(v, list):
                # a set upstream (details=true): unordered
                v = sorted(v, key=lambda x: json.dumps(x, sort_keys=True))
            out[canon(k, ids)] = v
        return out
    return obj


def sort_detail(desc):
    """Upstream lists the metrics of an error's `detail` in index order (by
    metric UUID, random): sort the list so only its content is compared."""
    if isinstance(desc, dict) and isinstance(desc.get("detail"), list):
        desc = dict(desc)
        desc["detail"] = sorted(desc["detail"], key=lambda x: json.dumps(x))
    return desc


def is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def walk_diff(a, b, path, out):
    """Append (kind, path, a, b) for every difference; kinds: value,
    last-digit, number-type, structure."""
    if is_num(a) and is_num(b):
        if type(a) is not type(b):
            if a == b:
                out.append(("number-type", path, a, b))
                return
        if a == b or (isinstance(a, float) and isinstance(b, float)
                      and math.isnan(a) and math.isnan(b)):
            return
        if (math.isfinite(a) and math.isfinite(b)
                and abs(a - b) <= REL_TOL * max(abs(a), abs(b))):
            out.append(("last-digit", path, a, b))
        else:
            out.append(("value", path, a, b))
        return
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            walk_diff(x, y, path + "[%d]" % i, out)
        if len(a) != len(b):
            i = min(len(a), len(b))
            out.append(("structure", path + " (len %d vs %d)" % (len(a), len(b)),
                        a[i] if i < len(a) else "<absent>",
                        b[i] if i < len(b) else "<absent>"))
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append(("structure", path + "." + str(k),
                            a.get(k, "<absent>"), b.get(k, "<absent>")))
            else:
                walk_diff(a[k], b[k], path + "." + str(k), out)
        return
    if a != b:
        out.append(("value" if type(a) is type(b) else "structure", path, a, b))


def description(resp):
    if resp.ok_json and isinstance(resp.data, dict) and "description" in resp.data:
        return resp.data["description"]
    return resp.text.strip()


def compare(up, ours, up_ids, our_ids, mode="full"):
    """Return None if equivalent, else (kind, detail). mode: full | status |
    status+desc (compare only status, and the description for 4xx)."""
    if up.status != ours.status:
        if up.status >= 500 and ours.status >= 500:
            return None
        return ("status", "status %s vs %s" % (up.status, ours.status))
    if up.status >= 500 or mode == "status":
        return None
    if up.status >= 400:
        a = sort_detail(canon(description(up), up_ids))
        b = sort_detail(canon(description(ours), our_ids))
        if a != b:
            diffs = []
            walk_diff(a, b, "description", diffs)
            d = diffs[0] if diffs else ("value", "description", a, b)
            return ("error-text", "%s: upstream %s vs ours %s" % (
                d[1], short(d[2], 200), short(d[3], 200)))
        return None
    if mode == "status+desc":
        return None
    if up.ok_json != ours.ok_json:
        return ("structure", "JSON body: upstream %s, ours %s" % (
            up.ok_json, ours.ok_json))
    if not up.ok_json:
        if up.text != ours.text:
            return ("value", "non-JSON body differs")
        return None
    diffs = []
    walk_diff(canon(up.data, up_ids), canon(ours.data, our_ids), "$", diffs)
    if not diffs:
        return None
    kinds = collections.Counter(d[0] for d in diffs)
    # worst kind first
    for kind in ("structure", "value", "number-type", "last-digit"):
        if kind in kinds:
            first = next(d for d in diffs if d[0] == kind)
            more = "" if len(diffs) == 1 else " (+%d more: %s)" % (
                len(diffs) - 1, ", ".join("%s=%d" % kv for kv in sorted(kinds.items())))
            return (kind, "%s: upstream %s vs ours %s%s" % (
                first[1], short(first[2], 120), short(first[3], 120), more))


def short(x, n=300):
    s = x if isinstance(x, str) else json.dumps(x)
    return s if len(s) <= n else s[:n] + "...(%d chars)" % len(s)


# ------------------------------------------------------------ random input
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def fmt_iso(ns, rng, style=None):
    """ns: integer nanoseconds since epoch -> an ISO 8601 string."""
    style = style or rng.choice(["naive", "naive", "Z", "offset", "offset",
                                 "space", "utc0"])
    secs, frac = divmod(ns, 10 ** 9)
    if style == "offset":
        off_min = rng.choice([120, -300, -330, 60, 545, -720, 840])
    elif style == "utc0":
        off_min = 0
    else:
        off_min = 0
    dt = EPOCH + datetime.timedelta(seconds=secs + off_min * 60)
    s = dt.strftime("%Y-%m-%d") + (" " if style == "space" else "T") + dt.strftime("%H:%M:%S")
    if frac:
        digits = rng.choice([3, 6, 9]) if frac % 1000 == 0 else 9
        if frac % 10 ** 6 == 0:
            digits = rng.choice([3, 6])
        s += "." + ("%09d" % frac)[:digits]
    if style == "Z":
        s += "Z"
    elif style == "offset":
        sign = "+" if off_min >= 0 else "-"
        h, m = divmod(abs(off_min), 60)
        s += rng.choice(["%s%02d:%02d", "%s%02d%02d"]) % (sign, h, m)
    elif style == "utc0":
        s += "+00:00"
    return s


def fmt_epoch(ns, rng):
    """-> int or float seconds since epoch (float may be inexact)."""
    if ns % 10 ** 9 == 0 and rng.random() < 0.7:
        return ns // 10 ** 9
    return float("%d.%09d" % divmod(ns, 10 ** 9))


def fmt_ts(ns, rng, mode):
    if mode == "iso":
        return fmt_iso(ns, rng)
    if mode == "epoch":
        return fmt_epoch(ns, rng)
    # epochstr
    v = fmt_epoch(ns, rng)
    return repr(v) if isinstance(v, float) else str(v)


def rand_value(rng, flavor):
    r = rng.random()
    if flavor == "huge" and r < 0.5:
        return rng.choice([1, -1]) * rng.choice([1e15, 1e17, 3.3e150, 1e300, 2 ** 53 + 1])
    if flavor == "tiny" and r < 0.5:
        return rng.choice([1, -1]) * rng.choice([1e-300, 5e-324, 1e-9, 3.3e-7])
    if r < 0.3:
        return rng.randint(-1000, 1000)
    if r < 0.6:
        return round(rng.uniform(-100, 100), rng.randint(0, 6))
    if r < 0.75:
        return rng.uniform(-1e6, 1e6)
    if r < 0.85:
        return rng.randint(-10 ** 12, 10 ** 12)
    if r < 0.95:
        return rng.choice([0, 0.0, -0.0, 0.1, 0.2, 0.3, 1, 2, 3])
    return rng.uniform(0, 1) * 10 ** rng.randint(-12, 12)


def rand_granularity_spec(rng, g):
    """A way to write granularity g in an archive policy."""
    choices = [g, "%ds" % g]
    if g % 60 == 0:
        choices += ["%d min" % (g // 60), "%dm" % (g // 60)]
    if g % 3600 == 0:
        choices += ["%d hour" % (g // 3600), "%dh" % (g // 3600)]
    return rng.choice(choices)


def rand_policy(rng, name):
    methods = set()
    pool = BASIC_METHODS + ["%dpct" % p for p in (1, 5, 50, 90, 95, 99)]
    for m in rng.sample(pool, rng.randint(1, 5)):
        methods.add(m)
    for _ in range(rng.choice([0, 0, 1, 2])):
        methods.add("rate:" + rng.choice(pool))
    ngran = rng.choice([1, 2, 2, 3])
    grans = sorted(rng.sample(GRANULARITIES, ngran))
    definition = []
    for g in grans:
        d = {"granularity": rand_granularity_spec(rng, g)}
        kind = rng.random()
        if kind < 0.5:
            d["points"] = rng.randint(3, 120)
        elif kind < 0.9:
            n = rng.randint(3, 120)
            ts = g * n
            if rng.random() < 0.2:
                ts += rng.randint(1, g)  # not a multiple of the granularity
            d["timespan"] = rng.choice(["%ds" % ts, ts, "%d seconds" % ts])
        # else: unlimited points
        definition.append(d)
    rng.shuffle(definition)
    return {
        "name": name,
        "back_window": rng.randint(0, 3),
        "aggregation_methods": sorted(methods),
        "definition": definition,
    }, grans


def policy_span(rng, grans, definition):
    """Pick how many seconds of data to generate."""
    g = grans[-1]
    return int(g * rng.choice([2, 4, 8, 20, 60, 150]) + rng.randint(0, g))


def to_sexpr(node):
    if isinstance(node, list):
        return "(" + " ".join(to_sexpr(x) for x in node) + ")"
    if isinstance(node, float):
        return repr(node)
    return str(node)


# ------------------------------------------------ documented differences
def upstream_ns(ns, ts):
    """The nanoseconds upstream stores for a timestamp written `ts` (exact
    time `ns`): ISO strings exactly; epoch numbers and epoch strings as
    `float(ts) * 10e8` truncated (utils.to_timestamps)."""
    if isinstance(ts, str):
        try:
            f = float(ts)
        except ValueError:
            return ns  # ISO 8601
    else:
        f = float(ts)
    return int(f * 10e8)


def upstream_bucket(ns, g):
    """carbonara.round_timestamp: the timedelta divided as float64."""
    return int(math.floor(float(ns) / float(g * 10 ** 9))) * g * 10 ** 9


def parse_hms(text):
    """Seconds of a timedelta as upstream prints it (`1 day, 0:01:00`)."""
    if not isinstance(text, str):
        return None
    days = 0
    if "day" in text:
        d, _, text = text.partition(",")
        days = int(d.split()[0])
    h, m, sec = text.strip().split(":")
    return days * 86400 + int(h) * 3600 + int(m) * 60 + float(sec)


def iso_seconds(text):
    return datetime.datetime.fromisoformat(text).timestamp()


# Every difference kept on purpose, with the finding of
# docs/upstream-comparison.md that explains it. classify() returns the first
# that matches, or None (an undocumented difference).
NUMPY_SIMD_OPS = ("**", "^", "pow", "cos", "sin", "tan")


def classify(d):
    up, ours = d.up.status, d.ours.status
    if up >= 500 and ours < 500:
        return "9: upstream 500, ours answers"
    if d.label.startswith("hostile[body-not-json"):
        return "8: ujson's wording for a body that is not JSON"
    if d.label.startswith("hostile[mixed-iso-then-int"):
        return "8: an int after an ISO timestamp (upstream: nanoseconds)"
    if d.kind == "last-digit" and any(
            ('"%s"' % op) in d.req or ("(%s " % op) in d.req
            for op in NUMPY_SIMD_OPS):
        return "12: numpy's SIMD pow/cos/sin/tan (last digit)"
    if (up == 400 and ours == 400 and d.kind == "error-text"
            and ("resample var " in d.req or "resample rate:var " in d.req
                 or '"resample", "var"' in d.req
                 or '"resample", "rate:var"' in d.req)):
        return "9: (resample var): upstream checks the data first, then 500"
    if (up == 200 and ours == 400 and "nonfinite-st" in d.label):
        return "8: a NaN or infinite start/stop (upstream: NaT, empty answer)"
    if d.rounding and (up == ours or (
            {up, ours} == {200, 400}
            and "Metrics cannot be aggregated" in (d.up.text + d.ours.text))):
        # a series one bucket longer or shorter also decides whether a
        # rolling window fits or the series overlap
        return "7: float rounding of timestamps near a bucket boundary"
    return None


# ---------------------------------------------------------------- scenario
class Diff(object):
    def __init__(self, scenario, cat, label, req, up, ours, kind, detail):
        self.scenario = scenario
        self.cat = cat
        self.label = label
        self.req = req
        self.up = up
        self.ours = ours
        self.kind = kind
        self.detail = detail


class Runner(object):
    def __init__(self, up, ours, args, up2=None):
        self.up = up
        self.ours = ours
        self.up2 = up2
        self.args = args
        self.diffs = []
        self.noise = []  # upstream vs upstream2 differences
        self.trace = open(args.trace, "w") if args.trace else None
        self.scenario_info = {}
        self.policy_name = None
        self.checked = 0
        self.token = uuid.uuid4().hex[:8]

    # one request on every server, compared
    def send(self, server, method, path, qlist, body, raw):
        return server.call(
            method, self.subst(path, server),
            [(k, self.subst(v, server)) for k, v in qlist],
            self.subst_obj(body, server),
            self.subst(raw, server) if raw is not None else None)

    def both(self, cat, method, path, query=None, body=None, raw=None,
             mode="full", label=None, before_compare=None):
        qlist = list(query.items()) if isinstance(query, dict) else (query or [])
        r1 = self.send(self.up, method, path, qlist, body, raw)
        r2 = self.send(self.ours, method, path, qlist, body, raw)
        r3 = (self.send(self.up2, method, path, qlist, body, raw)
              if self.up2 else None)
        if before_compare:
            before_compare(r1, r2, r3)
        self.checked += 1
        res = compare(r1, r2, self.up.ids, self.ours.ids, mode)
        reqtxt = method + " " + path
        if qlist:
            reqtxt += "?" + urllib.parse.urlencode(qlist)
        if raw is not None:
            reqtxt += "  body: " + short(raw, 400)
        elif body is not None:
            reqtxt += "  body: " + short(json.dumps(body), 400)
        if r3 is not None:
            upstream_noise = compare(r1, r3, self.up.ids, self.up2.ids, mode)
            if upstream_noise:
                self.noise.append(Diff(self.scenario, cat, label or cat, reqtxt,
                                       r1, r3, upstream_noise[0],
                                       upstream_noise[1]))
                if res and not compare(r3, r2, self.up2.ids, self.ours.ids, mode):
                    res = None  # ours is one of upstream's answers
        if res is not None:
            d = Diff(self.scenario, cat, label or cat, reqtxt, r1, r2,
                     res[0], res[1])
            d.rounding = [ph for ph, pts in getattr(self, "rounding", {}).items()
                          if pts and (ph in reqtxt
                                      or urllib.parse.quote(ph) in reqtxt)]
            d.finding = classify(d)
            self.diffs.append(d)
        if self.trace:
            self.trace.write(json.dumps({
                "scenario": self.scenario, "label": label or cat,
                "method": method, "path": path, "query": qlist, "body": body,
                "raw": raw, "ids": {"upstream": dict(self.up.ids),
                                    "ours": dict(self.ours.ids)},
                "upstream": [r1.status, r1.text], "ours": [r2.status, r2.text],
                "diff": list(res) if res else None}) + "\n")
        if self.args.verbose:
            print("  %-4s %-14s %s  -> %s/%s %s" % (
                "DIFF" if res else "ok", cat, short(reqtxt, 150), r1.status,
                r2.status, res[0] if res else ""))
        self.last = (r1, r2, r3)
        return r1, r2

    def note_point(self, ph, ns, ts, grans):
        """Remember a point of metric `ph` whose bucket upstream's float
        rounding changes (finding 7): `ts` as posted, `ns` its exact time."""
        up_ns = upstream_ns(ns, ts)
        for g in grans:
            if upstream_bucket(up_ns, g) != up_ns - up_ns % (g * 10 ** 9):
                self.rounding[ph].append((ts, g))
                return

    def subst(self, s, server):
        if not isinstance(s, str):
            return s
        for ph, real in server.ids.items():
            s = s.replace(ph, real)
        return s

    def subst_obj(self, obj, server):
        if obj is None:
            return None
        if isinstance(obj, str):
            return self.subst(obj, server)
        if isinstance(obj, list):
            return [self.subst_obj(x, server) for x in obj]
        if isinstance(obj, dict):
            return {self.subst_obj(k, server): self.subst_obj(v, server)
                    for k, v in obj.items()}
        return obj

    def create_metric(self, ph, policy_name):
        """Create a metric on every server; its id becomes placeholder `ph`
        (registered before the responses are compared)."""
        ok = [True]

        def register(r1, r2, r3):
            for server, r in ((self.up, r1), (self.ours, r2), (self.up2, r3)):
                if server is None:
                    continue
                if r.status == 201 and isinstance(r.data, dict) and "id" in r.data:
                    server.ids[ph] = r.data["id"]
                else:
                    ok[0] = False

        self.both("create-metric", "POST", "/v1/metric",
                  body={"archive_policy_name": policy_name},
                  before_compare=register)
        return ok[0]

    # ------------------------------------------------------------------
    def classify_retention(self, diffs):
        """Finding 13, checked per point after the scenario: upstream decides
        which splits of a granularity to store or delete from ONE
        `oldest_point_to_keep` per granularity, the one of whichever method
        its loop visits last (a Python set, ordered by PYTHONHASHSEED), where
        ours uses each method's own. A series that ends earlier than the
        others (`std` needs two points in a bucket, `rate:std` three) then
        loses its older splits upstream when another method comes last.

        Each stored series (metric, method) is read back from both servers:
        it is marked when ours holds every point upstream holds and every
        extra point of ours lies in a split strictly older than the split of
        `newest point of another method at that granularity - timespan`
        (upstream's own series). A difference is then counted as this
        finding when its request names a marked series' metric and method
        (reads, aggregates and cross-metric aggregations of that series).

        The same loop also works the other way: when the method visited last
        ends *earlier* (`std`), upstream keeps the older splits of every
        other method, which a read with `stop` shows alone (finding 11)
        where ours has deleted them. A `GET measures` whose answer upstream
        has points ours lacks (and ours none upstream lacks) is counted when
        each such point lies in a split older than the split of `its own
        method's newest point - timespan` (so ours drops it) and not older
        than the split of `another method's newest point - timespan` (so
        upstream keeps it when that method comes last)."""
        cache = {}

        def get(server, path, query=None):
            r = server.call("GET", path, query)
            return r.data if r.status == 200 else None

        def series(server, ph, method):
            key = (server.name, ph, method)
            if key not in cache:
                real = server.ids.get(ph)
                data = get(server, "/v1/metric/%s/measures" % real,
                           [("aggregation", method)]) if real else None
                cache[key] = data if isinstance(data, list) else None
            return cache[key]

        marked = set()
        for ph in ("<A>", "<B>"):
            real = self.up.ids.get(ph)
            m = get(self.up, "/v1/metric/%s" % real) if real else None
            ap = m.get("archive_policy") if isinstance(m, dict) else None
            if not isinstance(ap, dict):
                continue
            spans = {}
            for d in ap.get("definition", []):
                g = parse_hms(d.get("granularity"))
                if g and d.get("points"):
                    spans[g] = g * d["points"]
            methods = ap.get("aggregation_methods", [])
            newest = {}
            for other in methods:
                for t, g, _ in series(self.up, ph, other) or []:
                    last = newest.get((other, g))
                    if last is None or iso_seconds(t) > last:
                        newest[(other, g)] = iso_seconds(t)
            for method in methods:
                up_s, ours_s = series(self.up, ph, method), series(self.ours, ph, method)
                if up_s is None or ours_s is None:
                    continue
                up_pts = {tuple(p) for p in up_s}
                extra = [p for p in ours_s if tuple(p) not in up_pts]
                if not extra or not up_pts <= {tuple(p) for p in ours_s}:
                    continue

                def explained(p):
                    t, g = iso_seconds(p[0]), p[1]
                    span, split = spans.get(g), 3600 * g
                    if span is None:
                        return False
                    return any(
                        t // split < (last - span) // split
                        for (other, og), last in newest.items()
                        if other != method and og == g)

                if all(explained(p) for p in extra):
                    marked.add((ph, method))
            self.classify_kept_splits(diffs, ph, methods, spans, newest)

        for d in diffs:
            if d.finding:
                continue
            req = urllib.parse.unquote_plus(d.req)
            for ph, method in marked:
                if ph in req and re.search(
                        r"(?<![\w:])%s(?![\w])" % re.escape(method), req):
                    d.finding = ("13: upstream's retention per granularity "
                                 "(set order of the methods)")
                    break

    def classify_kept_splits(self, diffs, ph, methods, spans, newest):
        """The reverse case of finding 13 (see classify_retention) for the
        measures reads of metric `ph`."""
        for d in diffs:
            if d.finding or "/v1/metric/%s/measures" % ph not in d.req:
                continue
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(
                d.req.split(" ", 1)[-1].split("  ")[0]).query)
            method = query.get("aggregation", ["mean"])[0]
            if method not in methods or "stop" not in query:
                continue
            if not (isinstance(d.up.data, list) and isinstance(d.ours.data, list)):
                continue
            up_pts = {tuple(p) for p in d.up.data}
            ours_pts = {tuple(p) for p in d.ours.data}
            extra = up_pts - ours_pts
            if not extra or not ours_pts <= up_pts:
                continue

            def kept(p):
                t, g = iso_seconds(p[0]), p[1]
                span, split = spans.get(g), 3600 * g
                own = newest.get((method, g))
                if span is None or own is None:
                    return False
                return t // split < (own - span) // split and any(
                    t // split >= (last - span) // split
                    for (other, og), last in newest.items()
                    if other != method and og == g)

            if all(kept(p) for p in extra):
                d.finding = ("13: upstream's retention per granularity "
                             "(set order of the methods)")

    # ------------------------------------------------------------------
    def run_scenario(self, idx):
        self.scenario = idx
        self.rounding = {"<A>": [], "<B>": []}
        for server in (self.up, self.ours, self.up2):
            if server is not None:
                server.ids.clear()
        rng = random.Random("%d:%d" % (self.args.seed, idx))
        pname = "cmp-s%d-n%d-%s" % (self.args.seed, idx, self.token)
        policy, grans = rand_policy(rng, pname)
        self.policy_name = pname
        methods = policy["aggregation_methods"]
        r1, r2 = self.both("create-policy", "POST", "/v1/archive_policy",
                           body=policy)
        if r1.status != 201 or r2.status != 201:
            print("scenario %d: archive policy creation failed (%s/%s): %s | %s"
                  % (idx, r1.status, r2.status, short(r1.text, 200),
                     short(r2.text, 200)))
            return
        # B: usually the same policy, sometimes another random one
        pname_b = pname
        grans_b = grans
        methods_b = methods
        if rng.random() < 0.2:
            pname_b = pname + "-b"
            policy_b, grans_b = rand_policy(rng, pname_b)
            policy_b["aggregation_methods"] = sorted(
                set(policy_b["aggregation_methods"]) | set(methods[:1]))
            methods_b = policy_b["aggregation_methods"]
            r1, r2 = self.both("create-policy", "POST", "/v1/archive_policy",
                               body=policy_b)
            if r1.status != 201 or r2.status != 201:
                return
        for ph, pn in (("<A>", pname), ("<B>", pname_b), ("<H>", pname)):
            if not self.create_metric(ph, pn):
                print("scenario %d: metric creation failed" % idx)
                return
        self.both("get-metric", "GET", "/v1/metric/<A>")

        span = policy_span(rng, grans, policy["definition"])
        t0 = rng.randint(1577836800, 1735689600)  # 2020..2025
        if rng.random() < 0.5:
            t0 -= t0 % grans[-1]
        refresh_each = rng.random() < 0.6
        if self.args.processing != "random":
            refresh_each = self.args.processing == "each-batch"
        flavor = rng.choice(["normal"] * 8 + ["huge", "tiny"])
        edges = rng.random() < 0.3
        if self.args.edges != "some":
            edges = self.args.edges == "always"
        info = "policy %s back_window=%d grans=%s methods=%s span=%ds t0=%d %s %s%s" % (
            pname, policy["back_window"], grans, ",".join(methods), span, t0,
            "refresh-each-batch" if refresh_each else "refresh-at-end", flavor,
            " edges" if edges else "")
        self.scenario_info[idx] = info
        if self.args.verbose:
            print("scenario %d: %s" % (idx, info))

        # ---- measures for A
        nbatches = rng.randint(1, 5)
        seen = []
        for b in range(nbatches):
            lo = t0 + span * b // nbatches
            hi = t0 + span * (b + 1) // nbatches
            back = int(span * rng.choice([0, 0.05, 0.2, 0.5]) / nbatches)
            mode = rng.choice(["iso", "iso", "epoch", "epochstr"])
            batch = []
            for _ in range(rng.randint(1, 40)):
                if seen and rng.random() < 0.1:
                    ns = rng.choice(seen)  # exact duplicate timestamp
                else:
                    sec = rng.randint(lo - back, max(lo - back, hi))
                    sub = rng.choice([0, 0, 0, rng.randint(0, 999) * 10 ** 6,
                                      rng.randint(0, 10 ** 9 - 1),
                                      10 ** 9 - 1, 1])
                    if edges and rng.random() < 0.15:
                        # within a microsecond of a whole second, either side
                        sub = rng.choice([rng.randint(1, 1000),
                                          10 ** 9 - rng.randint(1, 1000)])
                    if not edges and (
                            sub and min(sub, 10 ** 9 - sub) < 10 ** 4):
                        # upstream rounds timestamps to buckets through
                        # float64 seconds: within ~0.25 us of a boundary it
                        # picks the next bucket (known difference, see doc)
                        sub = 5 * 10 ** 8 + rng.randint(0, 10 ** 6)
                    ns = sec * 10 ** 9 + sub
                seen.append(ns)
                ts = fmt_ts(ns, rng, mode)
                self.note_point("<A>", ns, ts, grans)
                batch.append({"timestamp": ts,
                              "value": rand_value(rng, flavor)})
            if rng.random() < 0.3:
                batch.sort(key=lambda m: str(m["timestamp"]))
            self.both("post-measures", "POST", "/v1/metric/<A>/measures",
                      body=batch, label="post-measures[%s]" % mode)
            if refresh_each:
                m = rng.choice(methods)
                self.both("measures", "GET", "/v1/metric/<A>/measures",
                          {"refresh": "true", "aggregation": m},
                          label="measures(after batch %d)" % b)

        # ---- measures for B: overlapping part of A's range
        shift = int(span * rng.choice([0.1, 0.3, 0.5, 0.8]))
        for b in range(rng.randint(1, 2)):
            batch = []
            mode = rng.choice(["iso", "epoch"])
            for _ in range(rng.randint(1, 40)):
                sec = rng.randint(t0 + shift, t0 + shift + span)
                if rng.random() < 0.5:
                    sec -= sec % grans[0]
                ts = fmt_ts(sec * 10 ** 9, rng, mode)
                self.note_point("<B>", sec * 10 ** 9, ts, grans_b)
                batch.append({"timestamp": ts,
                              "value": rand_value(rng, "normal")})
            self.both("post-measures", "POST", "/v1/metric/<B>/measures",
                      body=batch, label="post-measures-B[%s]" % mode)
            if refresh_each:
                self.both("measures", "GET", "/v1/metric/<B>/measures",
                          {"refresh": "true", "aggregation": methods_b[0]},
                          label="measures-B(after batch %d)" % b)

        # ---- process everything, compare every method x granularity
        for m in methods:
            self.both("measures", "GET", "/v1/metric/<A>/measures",
                      {"aggregation": m, "refresh": "true"},
                      label="measures(all granularities)")
        for m in methods_b:
            self.both("measures", "GET", "/v1/metric/<B>/measures",
                      {"aggregation": m, "refresh": "true"},
                      label="measures-B(all granularities)")

        def rand_time(lo_pad=0):
            sec = rng.randint(t0 - span // 4, t0 + span + span // 4)
            if rng.random() < 0.4:
                sec -= sec % rng.choice(grans)
            ns = sec * 10 ** 9 + rng.choice([0, 0, 0, 500 * 10 ** 6])
            return str(fmt_ts(ns, rng, rng.choice(["iso", "iso", "epochstr"])))

        for m in methods:
            for g in grans:
                gq = rng.choice([str(g), str(float(g)), "%ds" % g]) if rng.random() < 0.3 else str(g)
                self.both("measures", "GET", "/v1/metric/<A>/measures",
                          {"aggregation": m, "granularity": gq},
                          label="measures(granularity)")
        for _ in range(rng.randint(4, 10)):
            m = rng.choice(methods)
            g = rng.choice(grans)
            q = [("aggregation", m)]
            if rng.random() < 0.8:
                q.append(("granularity", str(g)))
            if rng.random() < 0.6:
                q.append(("start", rand_time()))
            if rng.random() < 0.6:
                q.append(("stop", rand_time()))
            label = "measures(start/stop)"
            if ("granularity", str(g)) in q and rng.random() < 0.6:
                k = rng.choice([2, 3, 4, 6, 10, 60])
                q.append(("resample", rng.choice([str(g * k), "%ds" % (g * k)])))
                label = "measures(resample)"
            self.both("measures", "GET", "/v1/metric/<A>/measures", q,
                      label=label)
        if rng.random() < 0.3:
            g = rng.choice(grans)
            cal = rng.choice(["D", "W", "M", "Q", "H", "Y"])
            self.both("measures", "GET", "/v1/metric/<A>/measures",
                      [("aggregation", rng.choice(methods)),
                       ("granularity", str(g)), ("resample", cal)],
                      label="measures(calendar resample)")

        # ---- /v1/aggregates
        common = [m for m in methods if m in methods_b]
        for _ in range(rng.randint(5, 12)):
            self.rand_aggregates(rng, methods, common, grans, grans_b, rand_time)

        # ---- /v1/aggregation/metric
        for _ in range(rng.randint(2, 6)):
            q = [("metric", "<A>")]
            if rng.random() < 0.8:
                q.append(("metric", "<B>"))
            both_ms = [m for m in methods if m in methods_b] if len(q) == 2 else methods
            agg = rng.choice(both_ms or methods)
            rate_ms = [x for x in (both_ms or methods) if x.startswith("rate:")]
            rate_fill = bool(rate_ms) and rng.random() < 0.3
            if rate_fill:
                agg = rng.choice(rate_ms)
            q.append(("aggregation", agg))
            if rng.random() < 0.4:
                q.append(("reaggregation", rng.choice(AGG_FUNCS)))
            if rng.random() < 0.6:
                q.append(("needed_overlap", rng.choice(["0", "50", "100", "25.5"])))
            fill = rng.choice(FILLS)
            if rate_fill:
                fill = rng.choice([f for f in FILLS if f is not None])
            if fill is not None:
                q.append(("fill", fill))
            g = None
            if rng.random() < 0.5:
                g = rng.choice(grans)
                q.append(("granularity", str(g)))
            if rng.random() < 0.3:
                q.append(("start", rand_time()))
            if rng.random() < 0.3:
                q.append(("stop", rand_time()))
            if g and rng.random() < 0.3:
                q.append(("resample", str(g * rng.choice([2, 5, 12]))))
            if rng.random() < 0.3:
                q.append(("refresh", "true"))
            self.both("aggregation", "GET", "/v1/aggregation/metric", q,
                      label="aggregation/metric")

        # ---- hostile input
        self.hostile(rng, idx, methods, grans)

    def rand_aggregates(self, rng, methods, common, grans, grans_b, rand_time):
        m = rng.choice(methods)
        mc = rng.choice(common) if common else None
        A = ["metric", "<A>", m]
        AB = ["metric", ["<A>", mc], ["<B>", mc]] if mc else A
        B = ["metric", "<B>", mc] if mc else A
        const = rng.choice([2, 0.5, -3, 10, 0])
        kinds = [
            ("metric", lambda: A),
            ("metric2", lambda: AB),
            ("aggregate", lambda: ["aggregate", rng.choice(AGG_FUNCS), AB]),
            ("aggregate-rate", lambda: ["aggregate", "rate:" + rng.choice(AGG_FUNCS), AB]),
            ("binop-const", lambda: [rng.choice(["+", "-", "*", "/", "**", "%", "max",
                                                 "clip_min", "clip_max", ">", "=="]),
                                     A, const]),
            ("binop-metric", lambda: [rng.choice(["+", "-", "*", "/"]), A, B]),
            ("unary", lambda: [rng.choice(["abs", "neg", "floor", "ceil", "cos"]), A]),
            ("clip", lambda: ["clip", A, -10, 10]),
            ("rolling", lambda: ["rolling", rng.choice(AGG_FUNCS), rng.randint(1, 5), A]),
            ("resample", lambda: ["resample", rng.choice(AGG_FUNCS),
                                  rng.choice(grans) * rng.choice([1, 2, 3, 12]), A]),
            ("nested", lambda: ["aggregate", rng.choice(AGG_FUNCS),
                                ["resample", rng.choice(AGG_FUNCS),
                                 grans[-1] * rng.choice([1, 4]), AB]]),
            ("nested-rolling", lambda: ["+", ["rolling", "mean", 2, AB], 1]),
            ("tree", lambda: self.rand_tree(rng, rng.randint(2, 4), A, AB,
                                            grans)),
            ("tree", lambda: self.rand_tree(rng, rng.randint(2, 4), A, AB,
                                            grans)),
        ]
        rate_ms = [x for x in methods if x.startswith("rate:")]
        rate_common = [x for x in common if x.startswith("rate:")]
        if rate_ms:
            kinds.append(("rate-metric-fill",
                          lambda: ["metric", "<A>", rng.choice(rate_ms)]))
        if rate_common:
            kinds.append(("rate-metric2-fill", lambda: [
                "aggregate", rng.choice(AGG_FUNCS),
                ["metric"] + [[ph, rng.choice(rate_common)]
                              for ph in ("<A>", "<B>")]]))
        kinds.append(("aggregate-rate-fill", lambda: [
            "aggregate", "rate:" + rng.choice(AGG_FUNCS), AB]))
        name, fn = rng.choice(kinds)
        ops = fn()
        q = []
        if rng.random() < 0.5:
            g = rng.choice(grans) if name != "metric2" else rng.choice(
                [g for g in grans if g in grans_b] or grans)
            q.append(("granularity", str(g)))
        if rng.random() < 0.3:
            q.append(("start", rand_time()))
        if rng.random() < 0.3:
            q.append(("stop", rand_time()))
        fill = rng.choice(FILLS)
        if name.endswith("-fill"):
            fill = rng.choice([f for f in FILLS if f is not None])
        if fill is not None:
            q.append(("fill", fill))
        if rng.random() < 0.4:
            q.append(("needed_overlap", rng.choice(["0", "50", "100"])))
        if rng.random() < 0.2:
            q.append(("details", "true"))
        body = {"operations": to_sexpr(ops) if rng.random() < 0.6 else ops}
        self.both("aggregates", "POST", "/v1/aggregates", q, body=body,
                  label="aggregates[%s]" % name)

    def rand_tree(self, rng, depth, A, AB, grans):
        """A random operation tree, `depth` levels of operations over the
        metrics: resample with any method (upstream refuses some, wherever
        they sit), aggregate, rolling, binary and unary operators."""
        if depth <= 0:
            return rng.choice([A, AB])
        sub = self.rand_tree(rng, depth - 1, A, AB, grans)
        kind = rng.choice(["resample", "resample", "aggregate", "rolling",
                           "binop", "binop2", "unary", "clip", "rate"])
        if kind == "resample":
            return ["resample", rng.choice(RESAMPLE_FUNCS),
                    rng.choice(grans) * rng.choice([1, 2, 5]), sub]
        if kind == "aggregate":
            return ["aggregate", rng.choice(AGG_FUNCS + ["rate:mean",
                                                         "rate:max"]), sub]
        if kind == "rolling":
            return ["rolling", rng.choice(AGG_FUNCS), rng.randint(1, 3), sub]
        if kind == "binop":
            return [rng.choice(["+", "-", "*", "/", "max", "clip_min"]), sub,
                    rng.choice([2, -1, 0.5])]
        if kind == "binop2":
            return [rng.choice(["+", "-", "*"]), sub,
                    self.rand_tree(rng, depth - 1, A, AB, grans)]
        if kind == "unary":
            return [rng.choice(["abs", "neg", "floor", "ceil"]), sub]
        if kind == "clip":
            return ["clip", sub, -100, 100]
        return [rng.choice(["rateofchange", "rateofchangesec"]), sub]

    # ------------------------------------------------------------------
    def hostile(self, rng, idx, methods, grans):
        H = "/v1/metric/<H>/measures"
        unknown = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        good_ts = "2024-05-01T10:00:%02d" % rng.randint(0, 59)
        cases = [
            ("empty-batch", "POST", H, None, [], None),
            ("body-dict", "POST", H, None, {"timestamp": good_ts, "value": 1}, None),
            ("body-not-json", "POST", H, None, None, "this is not json"),
            ("body-list-of-numbers", "POST", H, None, [1, 2, 3], None),
            ("ts-garbage", "POST", H, None, [{"timestamp": "foo", "value": 1}], None),
            ("ts-bad-date", "POST", H, None, [{"timestamp": "2024-13-45T00:00:00", "value": 1}], None),
            ("ts-before-epoch", "POST", H, None, [{"timestamp": "1969-12-31T23:59:59", "value": 1}], None),
            ("ts-negative-epoch", "POST", H, None, [{"timestamp": -5, "value": 1}], None),
            ("ts-null", "POST", H, None, [{"timestamp": None, "value": 1}], None),
            ("ts-bool", "POST", H, None, [{"timestamp": True, "value": 1}], None),
            ("ts-object", "POST", H, None, [{"timestamp": {}, "value": 1}], None),
            ("ts-missing", "POST", H, None, [{"value": 1}], None),
            ("value-missing", "POST", H, None, [{"timestamp": good_ts}], None),
            ("value-NaN-string", "POST", H, None, [{"timestamp": good_ts, "value": "NaN"}], None),
            ("value-inf-string", "POST", H, None, [{"timestamp": good_ts, "value": "inf"}], None),
            ("value-garbage", "POST", H, None, [{"timestamp": good_ts, "value": "abc"}], None),
            ("value-null", "POST", H, None, [{"timestamp": good_ts, "value": None}], None),
            ("value-bool", "POST", H, None, [{"timestamp": good_ts, "value": True}], None),
            ("value-numeric-string", "POST", H, None, [{"timestamp": good_ts, "value": "12.5"}], None),
            ("value-list", "POST", H, None, [{"timestamp": good_ts, "value": [1]}], None),
            ("value-1e400", "POST", H, None, None, '[{"timestamp": "%s", "value": 1e400}]' % good_ts),
            ("value-NaN-literal", "POST", H, None, None, '[{"timestamp": "%s", "value": NaN}]' % good_ts),
            ("extra-key", "POST", H, None, [{"timestamp": good_ts, "value": 1, "foo": 2}], None),
            ("item-not-object", "POST", H, None, [[good_ts, 1]], None),
            ("mixed-iso-then-int", "POST", H, None,
             [{"timestamp": good_ts, "value": 1}, {"timestamp": 1714557600, "value": 2}], None),
            ("mixed-int-then-iso", "POST", H, None,
             [{"timestamp": 1714557600, "value": 1}, {"timestamp": good_ts, "value": 2}], None),
            ("mixed-iso-then-float", "POST", H, None,
             [{"timestamp": good_ts, "value": 1}, {"timestamp": 1714557600.5, "value": 2}], None),
            ("mixed-epochstr-then-iso", "POST", H, None,
             [{"timestamp": "1714557600", "value": 1}, {"timestamp": good_ts, "value": 2}], None),
            ("ts-date-only", "POST", H, None, [{"timestamp": "2024-05-02", "value": 4}], None),
            ("ts-nanoseconds", "POST", H, None,
             [{"timestamp": "2024-05-01T10:00:00.123456789123", "value": 5}], None),
            ("post-unknown-metric", "POST", "/v1/metric/%s/measures" % unknown, None,
             [{"timestamp": good_ts, "value": 1}], None),
            ("get-unknown-metric", "GET", "/v1/metric/%s/measures" % unknown, {}, None, None),
            ("get-default-aggregation", "GET", H, {}, None, None),
            ("get-non-uuid-metric", "GET", "/v1/metric/not-a-uuid/measures", {}, None, None),
            ("get-unknown-aggregation", "GET", H, {"aggregation": "bogus"}, None, None),
            ("get-aggregation-not-in-policy", "GET", H,
             {"aggregation": [x for x in BASIC_METHODS if x not in methods][0]}, None, None),
            ("get-granularity-not-in-policy", "GET", H, {"aggregation": methods[0], "granularity": "7"}, None, None),
            ("get-granularity-garbage", "GET", H, {"aggregation": methods[0], "granularity": "abc"}, None, None),
            ("get-granularity-zero", "GET", H, {"aggregation": methods[0], "granularity": "0"}, None, None),
            ("get-start-garbage", "GET", H, {"aggregation": methods[0], "start": "foo"}, None, None),
            ("get-stop-garbage", "GET", H, {"aggregation": methods[0], "stop": "2024-99-01"}, None, None),
            ("get-resample-no-granularity", "GET", H, {"aggregation": methods[0], "resample": "60"}, None, None),
            ("get-resample-garbage", "GET", H, {"aggregation": methods[0], "resample": "abc", "granularity": str(grans[0])}, None, None),
            ("get-resample-negative", "GET", H, {"aggregation": methods[0], "resample": "-60", "granularity": str(grans[0])}, None, None),
            ("get-refresh-garbage", "GET", H, {"aggregation": methods[0], "refresh": "maybe"}, None, None),
            ("get-start-after-stop", "GET", "/v1/metric/<A>/measures",
             {"aggregation": methods[0], "start": "2030-01-01T00:00:00", "stop": "2020-01-01T00:00:00"}, None, None),
            ("agg-parse-error", "POST", "/v1/aggregates", {}, {"operations": "(metric <A> mean"}, None),
            ("agg-unknown-op", "POST", "/v1/aggregates", {}, {"operations": "(foo (metric <A> mean))"}, None),
            ("agg-unknown-metric", "POST", "/v1/aggregates", {},
             {"operations": "(metric %s mean)" % unknown}, None),
            ("agg-non-uuid-metric", "POST", "/v1/aggregates", {},
             {"operations": "(metric foo mean)"}, None),
            ("agg-aggregation-not-in-policy", "POST", "/v1/aggregates", {},
             {"operations": "(metric <A> %s)" % [x for x in BASIC_METHODS if x not in methods][0]}, None),
            ("agg-fill-garbage", "POST", "/v1/aggregates", {"fill": "bogus"},
             {"operations": "(metric <A> %s)" % methods[0]}, None),
            ("agg-needed-overlap-garbage", "POST", "/v1/aggregates", {"needed_overlap": "abc"},
             {"operations": "(metric <A> %s)" % methods[0]}, None),
            ("agg-rolling-zero", "POST", "/v1/aggregates", {},
             {"operations": "(rolling mean 0 (metric <A> %s))" % methods[0]}, None),
            ("agg-rolling-too-long", "POST", "/v1/aggregates", {},
             {"operations": "(rolling mean 100000 (metric <A> %s))" % methods[0]}, None),
            ("agg-no-metric", "POST", "/v1/aggregates", {}, {"operations": "(+ 1 2)"}, None),
            ("agg-missing-operations", "POST", "/v1/aggregates", {}, {}, None),
            ("agg-granularity-not-in-policy", "POST", "/v1/aggregates", {"granularity": "7"},
             {"operations": "(metric <A> %s)" % methods[0]}, None),
            ("agg-bad-aggregate-fn", "POST", "/v1/aggregates", {},
             {"operations": "(aggregate bogus (metric <A> %s))" % methods[0]}, None),
            ("aggregation-non-uuid", "GET", "/v1/aggregation/metric", {"metric": "foo"}, None, None),
            ("aggregation-unknown", "GET", "/v1/aggregation/metric", {"metric": unknown}, None, None),
            ("aggregation-no-metric", "GET", "/v1/aggregation/metric", {}, None, None),
            ("aggregation-overlap-garbage", "GET", "/v1/aggregation/metric",
             {"metric": "<A>", "needed_overlap": "x"}, None, None),
            ("aggregation-fill-garbage", "GET", "/v1/aggregation/metric",
             [("metric", "<A>"), ("metric", "<B>"), ("fill", "bogus")], None, None),
            ("policy-unknown-method", "POST", "/v1/archive_policy", {},
             {"name": "bad-%s-%d-1" % (self.token, idx), "aggregation_methods": ["bogus"],
              "definition": [{"granularity": "1s", "points": 10}]}, None),
            ("policy-zero-granularity", "POST", "/v1/archive_policy", {},
             {"name": "bad-%s-%d-2" % (self.token, idx),
              "definition": [{"granularity": 0, "points": 10}]}, None),
            ("policy-duplicate-granularity", "POST", "/v1/archive_policy", {},
             {"name": "bad-%s-%d-3" % (self.token, idx),
              "definition": [{"granularity": "1s", "points": 10}, {"granularity": 1, "points": 5}]}, None),
            ("policy-negative-back-window", "POST", "/v1/archive_policy", {},
             {"name": "bad-%s-%d-4" % (self.token, idx), "back_window": -1,
              "definition": [{"granularity": "1s", "points": 10}]}, None),
            ("policy-inconsistent", "POST", "/v1/archive_policy", {},
             {"name": "bad-%s-%d-5" % (self.token, idx),
              "definition": [{"granularity": "1s", "points": 10, "timespan": "1 hour"}]}, None),
            ("policy-only-points", "POST", "/v1/archive_policy", {},
             {"name": "bad-%s-%d-6" % (self.token, idx), "definition": [{"points": 10}]}, None),
            ("metric-unknown-policy", "POST", "/v1/metric", {},
             {"archive_policy_name": "no-such-policy-%s" % self.token}, None),
        ]
        nf = rng.choice(NONFINITE)
        A = "/v1/metric/<A>/measures"
        cases += [
            ("nonfinite-granularity", "GET", A,
             {"aggregation": methods[0], "granularity": nf}, None, None),
            ("nonfinite-resample", "GET", A,
             {"aggregation": methods[0], "granularity": str(grans[0]),
              "resample": nf}, None, None),
            ("nonfinite-start", "GET", A,
             {"aggregation": methods[0], "start": nf}, None, None),
            ("nonfinite-stop", "GET", A,
             {"aggregation": methods[0], "stop": nf}, None, None),
            ("agg-nonfinite-granularity", "POST", "/v1/aggregates",
             {"granularity": nf}, {"operations": "(metric <A> %s)" % methods[0]}, None),
            ("agg-nonfinite-fill", "POST", "/v1/aggregates",
             {"fill": nf}, {"operations": "(metric <A> %s)" % methods[0]}, None),
            ("agg-nonfinite-overlap", "POST", "/v1/aggregates",
             {"needed_overlap": nf}, {"operations": "(metric <A> %s)" % methods[0]}, None),
            ("agg-nonfinite-start", "POST", "/v1/aggregates",
             {"start": nf}, {"operations": "(metric <A> %s)" % methods[0]}, None),
            ("agg-nonfinite-constant", "POST", "/v1/aggregates", {},
             {"operations": "(+ (metric <A> %s) %s)" % (methods[0], nf)}, None),
            ("agg-nonfinite-rolling", "POST", "/v1/aggregates", {},
             {"operations": "(rolling mean %s (metric <A> %s))" % (nf, methods[0])}, None),
            ("agg-nonfinite-resample", "POST", "/v1/aggregates", {},
             {"operations": "(resample mean %s (metric <A> %s))" % (nf, methods[0])}, None),
            ("aggregation-nonfinite-granularity", "GET", "/v1/aggregation/metric",
             [("metric", "<A>"), ("granularity", nf)], None, None),
            ("aggregation-nonfinite-resample", "GET", "/v1/aggregation/metric",
             [("metric", "<A>"), ("granularity", str(grans[0])), ("resample", nf)], None, None),
            ("aggregation-nonfinite-fill", "GET", "/v1/aggregation/metric",
             [("metric", "<A>"), ("aggregation", methods[0]), ("fill", nf)],
             None, None),
        ]
        if idx != 0 and not self.args.all_hostile:
            cases = rng.sample(cases, min(len(cases), rng.randint(6, 14)))
        for (name, method, path, query, body, raw) in cases:
            fresh = method == "POST" and path == H
            if fresh:
                # every measures batch goes to a fresh metric, so that what a
                # server accepted does not leak into later comparisons
                if not self.create_metric("<H>", self.policy_name):
                    continue
            r1, r2 = self.both("hostile", method, path, query, body=body,
                               raw=raw, label="hostile[%s]" % name)
            if fresh and 202 in (r1.status, r2.status):
                # how the accepted input was processed
                for m in methods:
                    self.both("hostile", "GET", H,
                              {"aggregation": m, "refresh": "true"},
                              label="hostile[%s readback]" % name)


# ------------------------------------------------------------------ report
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upstream", default="http://127.0.0.1:8051")
    ap.add_argument("--ours", default="http://127.0.0.1:8061")
    ap.add_argument("--upstream2",
                    help="optional second upstream (started with another "
                         "PYTHONHASHSEED): a difference where ours equals "
                         "upstream2's answer is upstream nondeterminism, "
                         "listed apart and not counted")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scenarios", type=int, default=10)
    ap.add_argument("--first", type=int, default=0,
                    help="index of the first scenario (to rerun one)")
    ap.add_argument("--all-hostile", action="store_true",
                    help="run the whole hostile catalogue in every scenario "
                         "(default: scenario 0 runs all, others a sample)")
    ap.add_argument("--processing", choices=["random", "each-batch", "at-end"],
                    default="random",
                    help="process measures (GET ?refresh=true) after each "
                         "batch, only after all batches, or pick per scenario "
                         "(default)")
    ap.add_argument("--edges", choices=["never", "some", "always"],
                    default="some",
                    help="timestamps within a microsecond of a whole second: "
                         "in about 30%% of the scenarios (default), never or "
                         "in every one. Upstream buckets some of them "
                         "differently (finding 7); the differences on a "
                         "metric holding such a point are counted as that "
                         "finding")
    ap.add_argument("--ns-edges", dest="edges", action="store_const",
                    const="always", help="same as --edges always")
    ap.add_argument("--max-print", type=int, default=40,
                    help="differences printed in full per scenario")
    ap.add_argument("--json-report", help="write every difference to this file")
    ap.add_argument("--trace", help="write every request and both responses "
                                    "to this file (JSON lines)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    up = Server("upstream", args.upstream)
    ours = Server("ours", args.ours)
    up2 = Server("upstream2", args.upstream2) if args.upstream2 else None
    for s in (up, ours, up2):
        if s is None:
            continue
        r = s.call("GET", "/v1/")
        if r.status != 200:
            print("%s at %s does not answer GET /v1/: %s %s" % (
                s.name, s.base, r.status, short(r.text, 200)))
            return 2
    runner = Runner(up, ours, args, up2)
    t_start = time.time()
    for idx in range(args.first, args.first + args.scenarios):
        before = len(runner.diffs)
        try:
            runner.run_scenario(idx)
        except Exception as e:  # harness bug: report, continue
            import traceback
            traceback.print_exc()
            print("scenario %d: harness error %s" % (idx, e))
        d = runner.diffs[before:]
        runner.classify_retention(d)
        print("scenario %d: %d differences  [%s]" % (
            idx, len(d), runner.scenario_info.get(idx, "")))
        for x in d[:args.max_print]:
            print("  - %s [%s] %s  {%s}" % (x.label, x.kind, x.detail,
                                           x.finding or "UNDOCUMENTED"))
            print("      request : %s" % x.req)
            print("      upstream: %s %s" % (x.up.status, short(x.up.text, 300)))
            print("      ours    : %s %s" % (x.ours.status, short(x.ours.text, 300)))
        if len(d) > args.max_print:
            print("  ... %d more" % (len(d) - args.max_print))
        if d:
            print("  ids: " + ", ".join("%s upstream=%s ours=%s" % (
                ph, up.ids.get(ph), ours.ids.get(ph)) for ph in sorted(up.ids)))
    elapsed = time.time() - t_start

    print()
    print("=" * 72)
    print("%d scenarios, %d request pairs compared in %.1f s "
          "(upstream %.1f s, ours %.1f s)" % (
              args.scenarios, runner.checked, elapsed, up.time, ours.time))
    by_kind = collections.Counter(d.kind for d in runner.diffs)
    print("differences: %d  %s" % (len(runner.diffs), ", ".join(
        "%s=%d" % kv for kv in sorted(by_kind.items()))))
    by_finding = collections.Counter(d.finding for d in runner.diffs
                                     if d.finding)
    undocumented = [d for d in runner.diffs if not d.finding]
    print("documented (finding: count):")
    for f, n in sorted(by_finding.items()):
        print("  %5d  %s" % (n, f))
    print("UNDOCUMENTED: %d  %s" % (len(undocumented), ", ".join(
        "%s=%d" % kv for kv in sorted(collections.Counter(
            d.kind for d in undocumented).items()))))
    groups = collections.OrderedDict()
    for d in runner.diffs:
        groups.setdefault((d.label, d.kind, d.up.status, d.ours.status),
                          []).append(d)
    if groups:
        print("distinct (request kind, difference kind, statuses):")
        for (label, kind, s1, s2), ds in groups.items():
            print("  %4d x %-42s %-11s %s/%s first: scenario %d: %s" % (
                len(ds), label, kind, s1, s2, ds[0].scenario,
                short(ds[0].detail, 150)))
    if up2 is not None:
        print("upstream vs upstream2 (nondeterminism of upstream itself): %d" % len(runner.noise))
        ng = collections.OrderedDict()
        for d in runner.noise:
            ng.setdefault((d.label, d.kind), []).append(d)
        for (label, kind), ds in ng.items():
            print("  %4d x %-45s %-12s first: scenario %d: %s" % (
                len(ds), label, kind, ds[0].scenario, short(ds[0].detail, 160)))
            print("         request: %s" % short(ds[0].req, 200))
    if args.json_report:
        with open(args.json_report, "w") as f:
            json.dump([{
                "scenario": d.scenario, "label": d.label, "kind": d.kind,
                "finding": d.finding, "detail": d.detail, "request": d.req,
                "upstream": [d.up.status, d.up.text],
                "ours": [d.ours.status, d.ours.text]} for d in runner.diffs] + [{
                "scenario": d.scenario, "label": d.label, "kind": "upstream-noise:" + d.kind,
                "detail": d.detail, "request": d.req,
                "upstream": [d.up.status, d.up.text],
                "upstream2": [d.ours.status, d.ours.text]} for d in runner.noise],
                f, indent=1)
    return 1 if undocumented else 0


if __name__ == "__main__":
    sys.exit(main())
