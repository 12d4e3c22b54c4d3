# ClusterSource tests compare against the embedded store's StoreSource (src/api).
target_link_libraries(${exe} PRIVATE cairn_api)
