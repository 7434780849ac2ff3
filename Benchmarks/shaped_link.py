"""A veth pair into a network namespace whose server-to-client direction is shaped with
`tc ... tbf`: the link the load test's viewers sit behind in the validation scripts (root only)."""
import subprocess


def sh(*args, check=True):
    return subprocess.run(args, check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class ShapedLink:
    def __init__(self, namespace, host_if, ns_if, host_ip, ns_ip):
        self.namespace, self.host_if, self.ns_if, self.host_ip, self.ns_ip = namespace, host_if, ns_if, host_ip, ns_ip

    def setup(self):
        """Makes the pair (after removing any left from an earlier run)."""
        self.teardown()
        sh("ip", "netns", "add", self.namespace)
        sh("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        sh("ip", "link", "set", self.ns_if, "netns", self.namespace)
        sh("ip", "addr", "add", self.host_ip + "/24", "dev", self.host_if)
        sh("ip", "link", "set", self.host_if, "up")
        self.inside("ip", "addr", "add", self.ns_ip + "/24", "dev", self.ns_if)
        self.inside("ip", "link", "set", self.ns_if, "up")
        self.inside("ip", "link", "set", "lo", "up")
        return self

    def teardown(self):
        sh("ip", "netns", "del", self.namespace, check=False)
        sh("ip", "link", "del", self.host_if, check=False)

    def inside(self, *args, check=True):
        """Runs a command in the namespace (the client's side)."""
        return sh("ip", "netns", "exec", self.namespace, *args, check=check)

    def shape(self, rate, verb="change"):
        """The server-to-client rate in bit/s (`verb` "replace" the first time). burst: a few full
        frames. latency sizes the queue (rate × 15 s, more than a whole segment at a low rate), so
        the link never drops: what the viewers see is the rate, not TCP's loss recovery. With a
        500 ms queue a drop lost packets (about 1,500 retransmitted segments) and TCP's recovery
        held segments back: one run saw 6 stalls, another 4, against the arithmetic's 5; with 5 s,
        205 retransmissions and once 2 s more stalled time. With 15 s: 1 retransmission, exact."""
        sh("tc", "qdisc", verb, "dev", self.host_if, "root", "tbf", "rate", str(int(rate)), "burst", "32kb", "latency", "15s")


def retransmitted():
    """TCP segments this host has retransmitted so far."""
    lines = [l.split() for l in open("/proc/net/snmp") if l.startswith("Tcp:")]
    return int(lines[1][lines[0].index("RetransSegs")])
