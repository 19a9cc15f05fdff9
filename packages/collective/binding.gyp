{
  "targets": [
    {
      "target_name": "mtl_collective",
      "sources": ["native/collective_addon.c"],
      "cflags": ["-std=gnu11", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
