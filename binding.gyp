{
  "targets": [
    {
      "target_name": "layerfs",
      "sources": ["native/layerfs.c", "native/inotify.c", "native/supervise.c", "native/meta-at.c", "native/uring.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"]
    },
    {
      "target_name": "layerfs-client",
      "type": "executable",
      "sources": ["native/client.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra"]
    },
    {
      "target_name": "layerfs-supervisor",
      "type": "executable",
      "sources": ["native/supervisor.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra"]
    },
    {
      "target_name": "layerfs-floor-server",
      "type": "executable",
      "sources": ["native/floor-server.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra"]
    }
  ]
}
