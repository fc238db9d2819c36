# `cmake --install build --prefix P`: Loom's C++ API for programs outside
# this tree.
#   P/include/loom/         the headers (they need msgpack-cxx's, the system's)
#   P/lib/libloom.so        the core worker and the API (and libloom_proto.so)
#   P/bin/                  loom (the CLI), loom-gcs, loom-raylet, loom-worker
#   P/lib/cmake/Loom/       find_package(Loom): the target Loom::loom
#   P/lib/pkgconfig/loom.pc pkg-config --cflags --libs loom
# Installed binaries find libloom.so as $ORIGIN/../lib (CMAKE_INSTALL_RPATH),
# and libloom.so finds the daemons as its ../bin (FindLoomBinary).
install(TARGETS loom loom_msgpack EXPORT LoomTargets
  LIBRARY DESTINATION lib
  INCLUDES DESTINATION include)
install(TARGETS loom_proto LIBRARY DESTINATION lib)  # libloom.so needs it
install(TARGETS loom-cli loom-gcs loom-raylet loom-worker
  RUNTIME DESTINATION bin)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/loom DESTINATION include)
install(EXPORT LoomTargets NAMESPACE Loom:: DESTINATION lib/cmake/Loom)

include(CMakePackageConfigHelpers)
write_basic_package_version_file(
  ${CMAKE_BINARY_DIR}/package/LoomConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
configure_file(${CMAKE_SOURCE_DIR}/cmake/LoomConfig.cmake.in
  ${CMAKE_BINARY_DIR}/package/LoomConfig.cmake @ONLY)
configure_file(${CMAKE_SOURCE_DIR}/cmake/loom.pc.in
  ${CMAKE_BINARY_DIR}/package/loom.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/package/LoomConfig.cmake
  ${CMAKE_BINARY_DIR}/package/LoomConfigVersion.cmake
  DESTINATION lib/cmake/Loom)
install(FILES ${CMAKE_BINARY_DIR}/package/loom.pc DESTINATION lib/pkgconfig)
