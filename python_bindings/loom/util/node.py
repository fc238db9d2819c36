"""get_node_ip_address(): the IP address of the node this code runs on."""
import socket

from loom import _core


def get_node_ip_address():
    """The address this process's node advertises to the cluster; without
    a cluster, the address this machine would reach others from."""
    if _core.is_initialized():
        me = _core.node_id()
        for n in _core.nodes():
            if n["NodeID"] == me:
                return n["NodeManagerAddress"]
    return _local_ip()


def _local_ip():
    # Connecting a UDP socket sends nothing; it only picks the route.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("10.255.255.255", 1))
        return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    finally:
        s.close()
