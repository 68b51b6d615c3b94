"""The HAProxy data plane: one HAProxy 2.6 process (master-worker) per load balancer."""
