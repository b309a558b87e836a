# The live-capture addon: node-addon-api over libpcap (src/capture/native/pcap-addon.cc).
# Built by src/capture/native/build.mjs (npm's `install` script and `npm run build:native`), which
# points node-gyp at the headers of the running node so nothing is downloaded.
{
  "targets": [
    {
      "target_name": "mirrorflow_pcap",
      "sources": ["pcap-addon.cc", "impair.cc", "crc32c.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags": ["-pthread"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lpcap", "-pthread"]
    }
  ]
}
