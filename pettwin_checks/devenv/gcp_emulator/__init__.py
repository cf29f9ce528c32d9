"""A local GCP emulator: a real HTTP server on loopback speaking Google's wire formats, so no test reaches Google.

Endpoints (all on one port):
    /  and /computeMetadata/v1/...      metadata server (requires `Metadata-Flavor: Google`)
    POST /token                         OAuth token endpoint: JWT-bearer grant for keys the emulator issued,
                                        refresh-token grant for the authorized_user files it wrote
    POST /v1/projects/-/serviceAccounts/{sa}:generateAccessToken      IAM credentials (impersonation)
    GET  /v3/projects/{p}/timeSeries    Cloud Monitoring timeSeries.list
    GET  /v3/projects/{p}/metricDescriptors[/{type}], /monitoredResourceDescriptors[/{type}]   descriptors.yaml
    GET  /v2/projects/{p}/locations/{l}/services[/{s}[/revisions[/{r}]]]   Cloud Run Admin API v2 ({s} may be -)
    POST /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:countTokens | :generateContent
    any other method of those four APIs' discovery documents: scopes and request checked, then answered as to a
    read-only identity in a project without such resources (a write: 403 IAM_PERMISSION_DENIED; list: empty)
    /_emulator/...                      control plane for tests (faults, scenario, request log), JSON

Google APIs need `Authorization: Bearer <token>` with a token the emulator issued (metadata server, /token,
generateAccessToken, GcpEmulator.issue_access_token) unless the emulator runs with require_auth=False. A token
carries scopes: the metadata server's `?scopes=a,b` (comma-separated, as on Cloud Run; cloud-platform when absent),
the assertion's `scope` claim, generateAccessToken's `scope` list, a refresh grant's scopes. Each API method accepts
the scopes its discovery document lists (discovery.py reads Google's documents from google-api-python-client); any
other token gets Google's 403 ACCESS_TOKEN_SCOPE_INSUFFICIENT. A self-signed JWT is a bearer token too: with a
`scope` claim, for those scopes; without one, only for the API its `aud` names (`https://<service>/`). The `fields`
and `prettyPrint` system parameters apply to every API method (partial_response.py).

Control plane:
    GET    /_emulator/info                     url, metadata_host, project_id, project_number, region, scenario
    POST   /_emulator/faults                   {"path_regex", "status"?, "latency"?, "count"?, "body"?, "method"?}
    GET    /_emulator/faults | DELETE /_emulator/faults
    POST   /_emulator/scenario                 {"name": "default"} or {"yaml": "<scenario text>"}
    GET    /_emulator/requests | DELETE /_emulator/requests     log of {method, path, query, params, status}
    POST   /_emulator/tokens/expire            every token issued so far becomes expired
    POST   /_emulator/service-account-key      a new key file body whose token_uri targets the emulator

Scenario YAML (files in scenarios/, loaded by name, by path, or as inline text):

    extends: default              # optional: start from another scenario; a series with the same metric type and
                                  # labels replaces the base's, new series are appended, other keys replace
    project:
      id: pettwin-demo            # project/project-id
      number: "412345678901"      # project/numeric-project-id
      region: us-central1         # instance/region -> projects/<number>/regions/<region>
      zone: us-central1-1         # optional, default <region>-1
      instance_id: "..."          # optional
      service_account: sa@pettwin-demo.iam.gserviceaccount.com   # metadata default account
    history_minutes: 180          # how far back points exist
    vertex:
      models: [gemini-2.5-flash]  # models countTokens/generateContent know (others: 404)
    series:
      - metric: aiplatform.googleapis.com/publisher/online_serving/model_invocation_count
        resource: {type: aiplatform.googleapis.com/PublisherModel, labels: {model_user_id: gemini-2.5-flash}}
        labels: {response_code: "429"}          # metric labels; booleans become "true"/"false"
        kind: DELTA                             # GAUGE | DELTA | CUMULATIVE
        value_type: INT64                       # INT64 | DOUBLE | BOOL | DISTRIBUTION
        unit: "1"                               # optional, echoed as the series' unit
        every_minutes: 1440                     # optional, GAUGE only: a point once every N minutes; default 1440
                                                # for serviceruntime quota/limit and quota/allocation/usage (Google's
                                                # cadence), else 1
        newest_minutes_ago: 300                 # the newest point's age at scenario load (default 360 if sampled)
        history_minutes: 2880                   # optional: this series' history (default: the scenario's, or
                                                # 2 * every_minutes + newest_minutes_ago for a sampled series)
        values: [0, 0, 3]                       # see below
        buckets: {exponential: {num_finite_buckets: 20, growth_factor: 2, scale: 1}}   # DISTRIBUTION only;
                 # or {linear: {num_finite_buckets, width, offset}} or {explicit: {bounds: [...]}}
    cloud_run:
      services:
        - name: pettwin-backend
          location: us-central1                 # optional, default project region
          image: ...                            # optional
          revisions:                            # oldest first; the last one is latestCreatedRevision
            - name: pettwin-backend-00002-def
              created_minutes_ago: 240
              traffic: 100                      # optional; default: 100% on the newest ready revision
              ready: false                      # optional, default true
              failure: {type: ContainerHealthy, reason: HEALTH_CHECK_CONTAINER_ERROR, message: ...}
              overrides: {...}                  # optional, deep-merged into the rendered Revision JSON
          overrides: {...}                      # optional, deep-merged into the rendered Service JSON
    (any other top-level key, e.g. `resources:` holding YAML anchors, is ignored)

Values: one point per whole minute. The point of epoch minute m (covering [m*60s, m*60s+60s)) has value
`values[m % len(values)]`; a scalar is the same every minute; `null` means no point that minute. For
DISTRIBUTION a flat list of numbers is one bucket-count vector used every minute, a list of lists cycles.
Bucket i of a layout with finite bounds B0..Bk is: 0 -> (-inf, B0), i -> [B(i-1), Bi), k+1 -> [Bk, +inf).
A distribution's mean and sumOfSquaredDeviation are computed from bucket representatives (the midpoint of a
finite bucket, B0/2 for the underflow, Bk for the overflow).

Points exist for every minute that has ended within the last `history_minutes`, computed from the wall clock
at request time. DELTA points span their minute, GAUGE points are sampled at the minute's end, CUMULATIVE
points run from a fixed origin (history_minutes before the scenario was loaded); their values are per-minute
increments.

timeSeries.list semantics (what a test can compute by hand):
  - raw (ALIGN_NONE): points whose end time is in (startTime, endTime], newest first.
  - aligned: windows (t-P, t] for t = endTime, endTime-P, ... > startTime; a raw point belongs to the window
    holding its end time; windows without points are omitted. ALIGN_RATE = window delta / P seconds.
  - ALIGN_PERCENTILE_nn / REDUCE_PERCENTILE_nn merge the window's (group's) buckets and interpolate linearly
    inside the bucket holding rank nn/100*count; the underflow answers B0, the overflow Bk. REDUCE_PERCENTILE_nn
    of numbers interpolates linearly between the closest ranks; ALIGN_STDDEV / REDUCE_STDDEV are population
    standard deviations (of a merged distribution: sqrt(sumOfSquaredDeviation / count)).
  - reducers group by the listed labels; a reduced series carries only those labels.
  - pages: series sorted by labels. view=HEADERS: pageSize counts series. view=FULL: pageSize counts points, so
    a series continues on the next page (same metric and resource, the next points).
  - ALIGN_INTERPOLATE: the value at the window end, linear between the points either side of it.
    ALIGN_PERCENT_CHANGE: (current - previous) / previous * 100 of 10-minute means (negative values ignored),
    previous one period earlier. secondaryAggregation: the same steps over what `aggregation` produced.
  - what Google refuses is refused with Google's body (see discovery.py, monitoring_query.py, descriptors.py): one
    metric type per filter, ANDed with the rest; a type descriptors.yaml (or the scenario's user-defined series)
    describes, else 404; a resource.type the metric is written for; aligners/reducers valid for the metric's kind
    and value type (checked against the descriptor even when no series match), pageSize >= 0, alignment periods
    of 60 s to 104 weeks, blank orderBy, known parameters only.

Cloud Run Admin API: services.list pages with pageSize/pageToken (no pageSize: every service) and refuses
locations/-; a service whose traffic is LATEST reports a LATEST traffic status.
"""

from .server import GcpEmulator

__all__ = ["GcpEmulator"]
