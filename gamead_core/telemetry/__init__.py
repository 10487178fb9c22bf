"""Observability: Prometheus metrics (:mod:`.metrics`), fleet histograms (:mod:`.histogram`), the API's
scrape-time read-outs (:mod:`.collectors`), HTTP metrics (:mod:`.http`) and OpenTelemetry traces
(:mod:`.tracing`). Each module is imported where it is used; this package exports nothing itself."""
