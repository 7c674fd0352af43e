"""From a model id to an answer: which targets may serve it (``router``: strategies compiled into
policies; ``aliases``: the model names agents hard-code, mapped to model ids; ``catalog``: which models
each provider has; ``pools``: one model id over several targets, one picked per request by a rule), the
loop over them (``fallback``), the stream it opens for a client (``stream``: its
first batch, iterator, verdict, usage and place in the gauge), and each target's health (``breaker``:
cooldown after repeated failures)."""
