from django.urls import path

from batches.pages import views

urlpatterns = [
    path("batches/", views.batch_list_page, name="batch-page-list"),
    path("batches/new/", views.batch_new_page, name="batch-page-new"),
    path("batches/<uuid:batch_id>/", views.batch_page, name="batch-page"),
]
