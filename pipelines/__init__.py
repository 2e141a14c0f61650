"""fifa.pipelines"""
