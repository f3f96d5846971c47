"""Upstream Gnocchi 4.7.1's own S3 incoming driver, for the interoperability
test in s3_driver.rs (run with the Python of a venv holding gnocchi==4.7.1 and
boto3: GNOCCHI_TEST_UPSTREAM_PYTHON).

    python upstream_s3_incoming.py ENDPOINT KEY SECRET PREFIX SACKS write METRIC TS_NS:VALUE...
    python upstream_s3_incoming.py ENDPOINT KEY SECRET PREFIX SACKS read

`write` stores the measures as one request (upstream's add_measures_batch);
`read` takes every sack as upstream's metricd does (process_measures_for_sack,
which deletes what it read) and prints {metric: [[ts_ns, value], ...]} as JSON.
"""
import json
import sys
import types
import uuid

import numpy

from gnocchi import incoming
from gnocchi.incoming import s3


def main():
    endpoint, key, secret, prefix, sacks, command = sys.argv[1:7]
    conf = types.SimpleNamespace(
        s3_endpoint_url=endpoint,
        s3_region_name=None,
        s3_access_key_id=key,
        s3_secret_access_key=secret,
        s3_bucket_prefix=prefix,
        s3_check_consistency_timeout=60,
        s3_max_pool_connections=50,
    )
    driver = s3.S3Storage(conf)
    driver.upgrade(int(sacks))
    if command == "write":
        metric = uuid.UUID(sys.argv[7])
        measures = []
        for pair in sys.argv[8:]:
            ts, value = pair.split(":")
            measures.append(incoming.Measure(
                numpy.datetime64(int(ts), "ns"), float(value)))
        driver.add_measures_batch({metric: measures})
    elif command == "read":
        out = {}
        for sack in driver.iter_sacks():
            with driver.process_measures_for_sack(sack) as measures:
                for metric, array in measures.items():
                    out[str(metric)] = [
                        [int(ts.astype("int64")), float(v)]
                        for ts, v in zip(array["timestamps"], array["values"])
                    ]
        print(json.dumps(out, sort_keys=True))
    else:
        raise SystemExit("unknown command " + command)


if __name__ == "__main__":
    main()
