def test_brand_tree_paths_nest(brand):
    assert brand.store_a.path.startswith(brand.region.path)
    assert brand.region.path.startswith(brand.hq.path)
    assert brand.store_a.path != brand.store_b.path


def test_api_key_authenticates_only_its_workspace(brand, api_key, other_workspace):
    from siyu.org.services import authenticate_api_key

    key = authenticate_api_key(api_key)
    assert key is not None and key.workspace_id == brand.workspace.pk
    assert authenticate_api_key(api_key[:-1] + ("x" if api_key[-1] != "x" else "y")) is None
    assert authenticate_api_key("not-a-key") is None
