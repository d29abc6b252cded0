# Runs each collector of Debian's prometheus-pgbouncer-exporter, unchanged, against one admin
# console and prints what it exports as JSON: {collector: {"samples": [...]} | {"error": "..."}}.
# The exporter's own CLI registers every collector at startup and stops at the first that fails;
# running them one by one shows what each would export. Usage: exporter-collectors.py HOST PORT USER
import json
import sys

from prometheus_pgbouncer_exporter import collectors
from prometheus_pgbouncer_exporter.utils import get_connection

host, port, user = sys.argv[1], sys.argv[2], sys.argv[3]
connection = get_connection(user, port, host)
out = {}
for name, make in [
    ('StatsCollector', lambda: collectors.StatsCollector(connection=connection, databases=None)),
    ('PoolsCollector', lambda: collectors.PoolsCollector(connection=connection, databases=None)),
    ('DatabasesCollector', lambda: collectors.DatabasesCollector(connection=connection, databases=None)),
    ('ListsCollector', lambda: collectors.ListsCollector(connection=connection)),
]:
    try:
        samples = []
        for family in make().collect():
            for s in family.samples:
                samples.append({'name': s.name, 'labels': s.labels, 'value': s.value})
        out[name] = {'samples': samples}
    except Exception as err:  # the exporter's own failure, reported as such
        out[name] = {'error': '%s: %s' % (type(err).__name__, err)}
connection.close()
print(json.dumps(out))
