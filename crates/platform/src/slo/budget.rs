//! TODO(issue 3): the in-process error budget behind `GET /slo`.
