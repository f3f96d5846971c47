#!/usr/bin/env python3
"""Replay the measures of one metric of a traced comparison scenario through
upstream Gnocchi 4.7.1's own processing, in process (file storage in a
temporary directory, no server), and print one stored series.

Used to prove finding 13 of docs/upstream-comparison.md: run it under several
PYTHONHASHSEED values and see that the answer follows the iteration order of
the policy's `aggregation_methods` set. Needs upstream's virtualenv:

    scripts/compare-with-upstream.py ... --seed 104 --first 70 --scenarios 1 \\
        --trace /tmp/t.jsonl
    for h in 0 1 2 3 4 5 6 7 8; do
      PYTHONHASHSEED=$h /work/upstream-venv/bin/python \\
        scripts/upstream-inprocess-replay.py /tmp/t.jsonl --method std --granularity 1
    done

All the metric's batches are processed at once, as one refresh after the last
batch does (a `refresh-at-end` scenario); for a `refresh-each-batch` scenario
pass --each-batch.
"""
import argparse
import json
import os
import tempfile
import uuid
from unittest import mock

import numpy

from gnocchi import archive_policy, carbonara, indexer, utils
from gnocchi.storage import file as file_storage


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trace", help="--trace file of compare-with-upstream.py")
    ap.add_argument("--metric", default="<A>", help="placeholder (<A> or <B>)")
    ap.add_argument("--method", required=True)
    ap.add_argument("--granularity", type=float, required=True,
                    help="seconds")
    ap.add_argument("--stop", help="ISO timestamp: read only up to it, as "
                    "GET measures?stop= does (an old split alone then shows)")
    ap.add_argument("--each-batch", action="store_true",
                    help="process after every batch instead of once")
    args = ap.parse_args()

    recs = [json.loads(line) for line in open(args.trace)]
    policies = {r["body"]["name"]: r["body"] for r in recs
                if r["method"] == "POST" and r["path"] == "/v1/archive_policy"
                and r["upstream"][0] == 201}
    created = [r for r in recs if r["method"] == "POST"
               and r["path"] == "/v1/metric" and r["upstream"][0] == 201]
    # placeholders are created in the order <A>, <B>, <H>
    order = ["<A>", "<B>", "<H>"]
    pol = policies[created[order.index(args.metric)]["body"]["archive_policy_name"]]
    path = "/v1/metric/%s/measures" % args.metric
    batches = [r["body"] for r in recs if r["method"] == "POST"
               and r["path"] == path and not r["label"].startswith("hostile")
               and r["upstream"][0] == 202]

    policy = archive_policy.ArchivePolicy(
        pol["name"], pol.get("back_window", 0),
        [archive_policy.ArchivePolicyItem(
            granularity=utils.to_timespan(d["granularity"]),
            points=d.get("points"),
            timespan=(utils.to_timespan(d["timespan"])
                      if "timespan" in d else None))
         for d in pol["definition"]],
        pol["aggregation_methods"])
    print("PYTHONHASHSEED=%s method order: %s" % (
        os.environ.get("PYTHONHASHSEED"), list(policy.aggregation_methods)))

    root = tempfile.mkdtemp()
    os.makedirs(os.path.join(root, "tmp"))
    conf = mock.Mock(file_basepath=root, file_subdir_len=2)
    storage = file_storage.FileStorage(conf)
    metric = indexer.Metric(uuid.uuid4(), policy)

    def as_array(batch):
        return numpy.array(
            list(zip(utils.to_timestamps([m["timestamp"] for m in batch]),
                     [float(m["value"]) for m in batch])),
            dtype=carbonara.TIMESERIES_ARRAY_DTYPE)

    groups = [[b] for b in batches] if args.each_batch else [batches]
    for group in groups:
        storage.add_measures_to_metrics(
            {metric: numpy.concatenate([as_array(b) for b in group])},
            mock.Mock())
    for agg in policy.aggregations:
        if (agg.method == args.method and agg.granularity
                == numpy.timedelta64(int(args.granularity * 1e9), "ns")):
            stop = (numpy.datetime64(utils.to_timestamp(args.stop), "ns")
                    if args.stop else None)
            ts = storage.get_aggregated_measures(
                {metric: [agg]}, to_timestamp=stop)[metric][agg]
            print(json.dumps([[str(t), float(v)] for t, v in ts.fetch()]))


if __name__ == "__main__":
    main()
