"""Sidecar injection: what Istio's injector adds to a pod, for `meshctl kube-inject` and the
admission webhook alike.

A pod is injected in three pure steps, each its own module: the annotations are checked the
way Istio's injector checks them (`annotations`), the sidecar is rendered from the settings and
the pod (`sidecar`, with the agent's command line kept apart in `agent` and the istio-init
arguments in `capture`), and the pod is rewritten with it (`pod`: removing an earlier
injection first, so that injecting twice changes nothing). `workloads` finds the pod template
inside Deployments, CronJobs and the other kinds kube-inject reads.
"""

__all__: list[str] = []
