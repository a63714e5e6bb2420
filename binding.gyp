{
  "targets": [
    {
      "target_name": "layerfs",
      "sources": ["native/layerfs.c", "native/inotify.c", "native/uring.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"]
    },
    {
      "target_name": "layerfs-client",
      "type": "executable",
      "sources": ["native/client.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra"]
    }
  ]
}
