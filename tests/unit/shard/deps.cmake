# The replica's time views are compared with the embedded Database (src/api).
target_link_libraries(${exe} PRIVATE cairn_api)
