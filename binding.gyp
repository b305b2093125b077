# Not a build description. node-gyp-build's install fallback runs `node-gyp
# rebuild` when no prebuild fits; this forwards that to CMakeLists.txt through
# cmake-js, so there is only one build.
{
  "targets": [
    {
      "target_name": "understudy",
      "type": "none",
      "actions": [
        {
          "action_name": "cmake_js_build",
          "inputs": ["CMakeLists.txt"],
          "outputs": ["build/Release/understudy.node"],
          "action": ["node", "scripts/build-native.mjs"]
        }
      ]
    }
  ]
}
